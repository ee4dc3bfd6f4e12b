"""The dispatcher's decision core: van routing (PyVRP), drone assignment and the dispatch plan
that combines them, each decision with its reason.

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
from missions.routing.plan import (
    CommunitySite,
    DeliveryTask,
    DispatchPlan,
    DispatchProblem,
    DispatchSettings,
    Mode,
    TaskOutcome,
    plan_dispatch,
)
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
    "CommunitySite",
    "Decision",
    "DecisionKind",
    "DeliveryTask",
    "DispatchPlan",
    "DispatchProblem",
    "DispatchSettings",
    "Drone",
    "DroneAssignmentSettings",
    "DronePlan",
    "DroneSpec",
    "DroneTask",
    "Mode",
    "Sortie",
    "SortieEstimate",
    "StartedTrip",
    "TaskOutcome",
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
    "plan_dispatch",
    "plan_vans",
    "schedule_trips",
]
