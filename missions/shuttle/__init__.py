"""Van shuttles: operators' shuttle plans, the van planner that fills each trip from pending
delivery work, and the run that drives a van through its trip (see ``docs/shuttles.md``).

Other mission code calls :func:`van_service_available` (a coroutine) to know whether vans can
take work now.
"""

from missions.shuttle.availability import van_service_available

__all__ = ["van_service_available"]
