"""VDA 5050 2.1 over MQTT: the master-control side for unmanned vans.

``wire`` (message models, topics, timestamps; shared with the simulated van), ``translate``
(wire <-> domain), ``address`` (link URLs), ``control`` (``VanHandle``, the ``VanControl`` of
one van), ``link`` (the ``VehicleLink``; its ``register()`` adds the ``vda5050+mqtt`` and
``vda5050+mqtts`` schemes, called by the composition root). This package's ``__init__``
imports nothing so that ``sim`` may import ``wire`` alone.
"""
