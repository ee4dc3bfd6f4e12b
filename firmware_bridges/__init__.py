"""Vehicle protocol bridges behind the ``fleet.link.VehicleLink`` port.

``mavlink`` (PX4), ``vda5050`` (vans over MQTT), ``speaker`` (payload over MQTT).
Imports only ``fleet``.
"""
