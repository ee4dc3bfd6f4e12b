"""The mission kinds this service runs, in the order their planners run each round: drone
deliveries first (a light urgent load flies before vans are considered), broadcasts, then van
shuttles. The composition root (``api``) hands this list to
:class:`missions.service.MissionService`; nothing else in ``missions`` names a kind.
"""

from __future__ import annotations

from missions import broadcast, delivery, shuttle
from missions.kinds import KindPlugin

KINDS: tuple[KindPlugin, ...] = (delivery.KIND, broadcast.KIND, shuttle.KIND)
"""Built-in mission kinds, in planning order."""
