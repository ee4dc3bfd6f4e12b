"""MAVLink 2 bridge to PX4 vehicles over UDP.

Importing this package registers the ``mavlink+udpin://HOST:PORT`` and
``mavlink+udpout://HOST:PORT`` link schemes with :mod:`fleet.link`; create links with
``fleet.link.create_link(url, ctx)``. Modules: ``link`` (UDP endpoint, discovery, heartbeats),
``session`` (per-vehicle telemetry and events), ``control`` (``MavlinkDrone``, the
``DroneControl``), ``commands``/``mission``/``params`` (protocol clients), ``codec`` (framing,
signing), ``translate`` (wire <-> domain), wire modules ``px4`` and ``px4_events``.
"""

from firmware_bridges.mavlink.link import SCHEME_UDPIN, SCHEME_UDPOUT, MavlinkLink, register

register()

__all__ = ["SCHEME_UDPIN", "SCHEME_UDPOUT", "MavlinkLink", "register"]
