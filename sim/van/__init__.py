"""Simulated unmanned vans speaking VDA 5050 2.1 over MQTT.

``model`` (vehicle figures and pure physics), ``agv`` (the vehicle side of the protocol),
``client`` (one van on its own MQTT connection), ``fleet`` (many vans from a world file).
"""
