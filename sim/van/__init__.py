"""Simulated unmanned vans speaking VDA 5050 2.1 over MQTT.

``model`` (vehicle figures and pure physics), ``route`` (the path and speed along an order's
edges), ``agv`` (the vehicle side of the protocol: the controller), ``acceptance`` (its order
checks, figure 8), ``messages`` (the messages it publishes), ``client`` (one van on its own MQTT
connection), ``fleet`` (many vans from a world file).
"""
