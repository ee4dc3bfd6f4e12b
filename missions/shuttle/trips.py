"""Van trips as the shuttle records them, and the VDA 5050 trip each one becomes.

A *delivery trip* loads every community's consignment at the warehouse dock (one ``pick`` per
community load), drives to each gate in turn, unloads there (one ``drop``), and comes back. A
*return trip* brings loads that did not reach their gate back to the dock and unloads them
there. A :class:`TripPlan` is stored in ``Mission.plan`` (:meth:`TripPlan.to_json`); the
:class:`~fleet.van.VanTrip` sent to the van is rebuilt from it with :func:`build_trip` (the
road routes are recomputed, deterministically, from the stop nodes), so a restarted service
knows the action ids and load ids it follows.

Every load id (``{trip id}.{community id}``) is the trace id that ties a box to its drop: the
van reports the pick and the drop of that load id, and every stock movement of its goods
names the trip's mission and the request.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from fleet.roads import Route
from fleet.van import (
    Drop,
    Pick,
    StopAction,
    TripNode,
    VanTrip,
    new_action_id,
    trip_from_routes,
)
from fleet.world import World

DELIVERY = "delivery"
"""A trip that loads at the dock and unloads at community gates."""
RETURN = "return"
"""A trip that brings undelivered loads back to the dock and unloads them there."""


@dataclass(frozen=True, slots=True)
class LoadLine:
    """Units of one SKU of one request in a load, carried by one task."""

    request_id: str
    sku_id: str
    units: int
    boxes: int
    task_id: str
    mission_id: str = ""
    """Mission that loaded it (set on return trips: the goods are booked back to it)."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "request_id": self.request_id,
            "sku_id": self.sku_id,
            "units": self.units,
            "boxes": self.boxes,
            "task_id": self.task_id,
        }
        if self.mission_id:
            out["mission_id"] = self.mission_id
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LoadLine:
        return cls(
            d["request_id"],
            d["sku_id"],
            int(d["units"]),
            int(d["boxes"]),
            d["task_id"],
            d.get("mission_id", ""),
        )


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """One consignment: picked at the dock, dropped at ``node_id``."""

    load_id: str
    community_id: str
    node_id: str
    """Where it is dropped (a gate; the dock on a return trip)."""
    lines: tuple[LoadLine, ...]
    kg: float
    pick_action_id: str = field(default_factory=new_action_id)
    """Empty on return trips (the load is already on board)."""
    drop_action_id: str = field(default_factory=new_action_id)
    eta: float | None = None
    """Planned end of unloading, world seconds."""
    deadline: float | None = None
    booked: bool = True
    """False for goods a van carried without a ``load`` in the ledger (a pick that happened
    while the service could not see it): unloading them moves no stock."""

    @property
    def boxes(self) -> int:
        return sum(ln.boxes for ln in self.lines)

    @property
    def request_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(ln.request_id for ln in self.lines))

    @property
    def sku(self) -> str:
        skus = {ln.sku_id for ln in self.lines}
        return skus.pop() if len(skus) == 1 else "mixed"

    def describe(self) -> str:
        parts: dict[str, int] = {}
        for ln in self.lines:
            parts[ln.sku_id] = parts.get(ln.sku_id, 0) + ln.boxes
        inner = ", ".join(f"{k} {v}" for k, v in parts.items())
        return f"{self.community_id}: {self.boxes} boxes ({inner})"

    def to_json(self) -> dict[str, Any]:
        return {
            "load_id": self.load_id,
            "community_id": self.community_id,
            "node_id": self.node_id,
            "boxes": self.boxes,
            "kg": round(self.kg, 3),
            "pick_action_id": self.pick_action_id,
            "drop_action_id": self.drop_action_id,
            "eta": self.eta,
            "deadline": self.deadline,
            "booked": self.booked,
            "lines": [ln.to_json() for ln in self.lines],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LoadPlan:
        return cls(
            load_id=d["load_id"],
            community_id=d["community_id"],
            node_id=d["node_id"],
            lines=tuple(LoadLine.from_json(x) for x in d["lines"]),
            kg=float(d["kg"]),
            pick_action_id=d["pick_action_id"],
            drop_action_id=d["drop_action_id"],
            eta=d.get("eta"),
            deadline=d.get("deadline"),
            booked=bool(d.get("booked", True)),
        )


@dataclass(frozen=True, slots=True)
class TripPlan:
    """A van trip as recorded in ``Mission.plan``."""

    trip_id: str
    """The VDA 5050 order id (the mission id)."""
    purpose: str
    """:data:`DELIVERY` or :data:`RETURN`."""
    warehouse_id: str
    dock_node_id: str
    stops: tuple[str, ...]
    """Road node ids of the stops in driving order: start, gates, dock."""
    loads: tuple[LoadPlan, ...]
    shuttle_plan_id: str | None = None
    shift_day: str | None = None
    """ISO date of the shift."""
    number: int = 0
    """Trip number in the van's shift."""
    start_deviation_m: float | None = None
    """How far the van may stand from the first stop (a van stopped off its node)."""
    distance_m: float = 0.0
    depart: float | None = None
    """Planned departure from the dock, world seconds."""
    return_at: float | None = None
    """Planned return to the dock, world seconds."""
    order: str = ""
    """The order the van now drives for this trip when it is not ``trip_id``: a trip driven on
    without the loads whose pick failed (``{trip_id}.r{n}``)."""
    loaded: bool = False
    """The order picks nothing: the trip's loads are on board already (a trip driven on)."""
    skip: tuple[str, ...] = ()
    """Load ids the order leaves out (their pick failed: nothing to drop)."""

    @property
    def order_id(self) -> str:
        """The VDA 5050 order id the van drives now."""
        return self.order or self.trip_id

    @property
    def boxes(self) -> int:
        return sum(ld.boxes for ld in self.loads)

    @property
    def kg(self) -> float:
        return sum(ld.kg for ld in self.loads)

    def load(self, load_id: str) -> LoadPlan | None:
        for ld in self.loads:
            if ld.load_id == load_id:
                return ld
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "van_shuttle",
            "purpose": self.purpose,
            "trip_id": self.trip_id,
            "warehouse_id": self.warehouse_id,
            "dock_node_id": self.dock_node_id,
            "stops": list(self.stops),
            "loads": [ld.to_json() for ld in self.loads],
            "shuttle_plan_id": self.shuttle_plan_id,
            "shift_day": self.shift_day,
            "number": self.number,
            "start_deviation_m": self.start_deviation_m,
            "boxes": self.boxes,
            "kg": round(self.kg, 3),
            "distance_m": round(self.distance_m, 1),
            "depart": self.depart,
            "return_at": self.return_at,
            **({"order": self.order} if self.order else {}),
            **({"loaded": True} if self.loaded else {}),
            **({"skip": list(self.skip)} if self.skip else {}),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TripPlan:
        return cls(
            trip_id=d["trip_id"],
            purpose=d["purpose"],
            warehouse_id=d["warehouse_id"],
            dock_node_id=d["dock_node_id"],
            stops=tuple(d["stops"]),
            loads=tuple(LoadPlan.from_json(x) for x in d["loads"]),
            shuttle_plan_id=d.get("shuttle_plan_id"),
            shift_day=d.get("shift_day"),
            number=int(d.get("number", 0)),
            start_deviation_m=d.get("start_deviation_m"),
            distance_m=float(d.get("distance_m", 0.0)),
            depart=d.get("depart"),
            return_at=d.get("return_at"),
            order=d.get("order", ""),
            loaded=bool(d.get("loaded", False)),
            skip=tuple(d.get("skip", ())),
        )


_P = TypeVar("_P", TripPlan, LoadPlan)


def replace_plan(plan: _P, **changes: Any) -> _P:
    """A copy of a trip or load plan with ``changes``."""
    return replace(plan, **changes)


def load_id_for(trip_id: str, community_id: str) -> str:
    """The trace id of a community's consignment on a trip."""
    return f"{trip_id}.{community_id}"


def routes_of(world: World, stops: Sequence[str], max_speed_kmh: float) -> list[Route]:
    """Shortest (time) road routes between consecutive stops."""
    net = world.road_network
    if len(stops) == 1:
        return [net.shortest_path(stops[0], stops[0], max_speed_kmh=max_speed_kmh)]
    return [
        net.shortest_path(a, b, max_speed_kmh=max_speed_kmh) for a, b in itertools.pairwise(stops)
    ]


def build_trip(world: World, plan: TripPlan, max_speed_kmh: float) -> VanTrip:
    """The VDA 5050 trip of ``plan`` (same ids every time it is built)."""
    routes = routes_of(world, plan.stops, max_speed_kmh)
    n_stops = len(routes) + 1
    actions: list[list[StopAction]] = [[] for _ in range(n_stops)]
    loads = [ld for ld in plan.loads if ld.load_id not in plan.skip]
    if plan.purpose == DELIVERY:
        if not plan.loaded:
            actions[0] = [
                Pick(
                    ld.load_id,
                    ld.boxes,
                    round(ld.kg, 3),
                    ld.sku,
                    action_id=ld.pick_action_id,
                    description=ld.describe(),
                    site=plan.warehouse_id,
                )
                for ld in loads
            ]
        gate_index = {node: i + 1 for i, node in enumerate(plan.stops[1:-1])}
        for ld in loads:
            actions[gate_index[ld.node_id]].append(_drop(ld, ld.community_id))
    else:
        actions[-1] = [_drop(ld, plan.warehouse_id) for ld in loads]
    if len(plan.stops) == 1:  # a trip that stays where it starts (unloading at the dock)
        node = world.road_network.node(plan.stops[0])
        return VanTrip(
            plan.order_id,
            (
                TripNode(
                    node.id,
                    node.latlon,
                    tuple(a for acts in actions for a in acts),
                    ", ".join(node.stops),
                    plan.start_deviation_m,
                ),
            ),
        )
    return trip_from_routes(
        plan.order_id,
        routes,
        actions,
        max_speed_mps=max_speed_kmh / 3.6,
        start_deviation_m=plan.start_deviation_m,
    )


def _drop(ld: LoadPlan, site: str) -> Drop:
    return Drop(
        ld.load_id,
        ld.boxes,
        round(ld.kg, 3),
        ld.sku,
        action_id=ld.drop_action_id,
        description=ld.describe(),
        site=site,
    )
