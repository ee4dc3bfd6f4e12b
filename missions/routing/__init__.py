"""The dispatcher's decision core: van routing (PyVRP) and drone assignment, each decision with
its reason (the service combines them in its planners: ``missions.delivery.planner``,
``missions.shuttle.planner``).

Pure: plain domain inputs in, decisions out, no I/O. See ``docs/dispatch.md``.
"""

from missions.routing.decisions import Alternative, Decision, DecisionKind
from missions.routing.drones import (
    Drone,
    DroneAssignmentSettings,
    DronePlan,
    DroneSpec,
    DroneTask,
    Sortie,
    SortieEstimate,
    Unassigned,
    assign_drones,
    estimate,
)
from missions.routing.matrix import TravelMatrix
from missions.routing.shuttle import (
    StartedTrip,
    Trip,
    Unserved,
    Van,
    VanPlan,
    VanProblem,
    VanRoutingSettings,
    VanStop,
    Visit,
    schedule_trips,
)
from missions.routing.vans import plan_vans

__all__ = [
    "Alternative",
    "Decision",
    "DecisionKind",
    "Drone",
    "DroneAssignmentSettings",
    "DronePlan",
    "DroneSpec",
    "DroneTask",
    "Sortie",
    "SortieEstimate",
    "StartedTrip",
    "TravelMatrix",
    "Trip",
    "Unassigned",
    "Unserved",
    "Van",
    "VanPlan",
    "VanProblem",
    "VanRoutingSettings",
    "VanStop",
    "Visit",
    "assign_drones",
    "estimate",
    "plan_vans",
    "schedule_trips",
]
