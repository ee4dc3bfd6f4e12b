"""MAVLink 2 bridge to PX4 vehicles over UDP.

Importing this package does nothing (no scheme registration, no imports): the composition root
calls :func:`firmware_bridges.mavlink.link.register` once to make ``mavlink+udpin://HOST:PORT``
and ``mavlink+udpout://HOST:PORT`` URLs create links through ``fleet.link.create_link``, and
test fixtures that create links do the same.

**Its face** (what other packages may use; :data:`__all__` names these modules):

* ``link``: :class:`~firmware_bridges.mavlink.link.MavlinkLink` (the ``VehicleLink``: UDP
  endpoint, discovery, heartbeats) and :func:`~firmware_bridges.mavlink.link.register`;
* ``control``: :class:`~firmware_bridges.mavlink.control.MavlinkDrone`, the ``DroneControl`` each
  discovered vehicle gets (and its extras: ``operate_winch``, ``run_prearm_checks``, ...);
* ``options``: :class:`~firmware_bridges.mavlink.options.MavlinkOptions`, the link options;
* ``codec``: framing, signing and frame counters (benchmarks and tests);
* ``wire``: the MAVLink wire types shared with the simulators (PX4 modes, mission items, events,
  event metadata, component information, FTP payloads); ``sim/`` may import only this
  subpackage of the bridge.

The rest is internal: ``session`` (a vehicle's telemetry and events, with ``texts``,
``readiness`` and ``inbox``), ``commands``/``mission``/``params``/``ftp``/``metadata`` (protocol
clients), ``arming_checks`` and ``verdicts`` (PX4's own verdicts), ``translate`` and
``translate_plans`` (wire <-> domain).
"""

__all__ = ["codec", "control", "link", "options", "wire"]
