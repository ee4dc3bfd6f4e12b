"""Builders of VDA 5050 orders and instant actions for the van tests, straight on the wire."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from firmware_bridges.vda5050 import wire
from sim.van.agv import VanAgv
from sim.van.model import Pose

MAP = "test-map"
"""Map id of the test vans."""
MANUFACTURER = "acme"
SERIAL = "VAN-01"

_headers = itertools.count(1)


def header(**over: Any) -> dict[str, Any]:
    base = {
        "header_id": next(_headers),
        "timestamp": wire.format_timestamp(1_700_000_000.0),
        "version": wire.PROTOCOL_VERSION,
        "manufacturer": MANUFACTURER,
        "serial_number": SERIAL,
    }
    base.update(over)
    return base


def pick(
    load: str, boxes: int, kg: float = 0.0, aid: str | None = None, **extra: Any
) -> wire.Action:
    return wire.action(
        "pick",
        aid or f"pick-{load}",
        wire.BlockingType.HARD,
        loadId=load,
        boxes=boxes,
        weight=kg,
        **extra,
    )


def drop(load: str, boxes: int, kg: float = 0.0, aid: str | None = None) -> wire.Action:
    return wire.action(
        "drop", aid or f"drop-{load}", wire.BlockingType.HARD, loadId=load, boxes=boxes, weight=kg
    )


def order(
    order_id: str,
    points: Sequence[tuple[float, float]],
    *,
    update: int = 0,
    first_seq: int = 0,
    released: int | None = None,
    actions: dict[int, list[wire.Action]] | None = None,
    node_ids: Sequence[str] | None = None,
    max_speed: float | None = None,
    deviation: float | None = None,
    map_id: str = MAP,
    **head: Any,
) -> wire.Order:
    """An order through ``points`` (node ids ``n<x>_<y>`` unless given)."""
    released = len(points) if released is None else released
    ids = list(node_ids) if node_ids else [f"n{int(x)}_{int(y)}" for x, y in points]
    actions = actions or {}
    nodes = [
        wire.Node(
            node_id=ids[i],
            sequence_id=first_seq + 2 * i,
            released=i < released,
            actions=actions.get(i, []),
            node_position=wire.NodePosition(
                x=x, y=y, map_id=map_id, allowed_deviation_xy=deviation if i == 0 else None
            ),
        )
        for i, (x, y) in enumerate(points)
    ]
    edges = [
        wire.Edge(
            edge_id=f"e{ids[i]}-{ids[i + 1]}",
            sequence_id=first_seq + 2 * i + 1,
            released=i + 1 < released,
            start_node_id=ids[i],
            end_node_id=ids[i + 1],
            actions=[],
            max_speed=max_speed,
        )
        for i in range(len(points) - 1)
    ]
    return wire.Order(
        **header(**head), order_id=order_id, order_update_id=update, nodes=nodes, edges=edges
    )


def instant(action_type: str, aid: str | None = None, **params: Any) -> bytes:
    msg = wire.InstantActions(
        **header(),
        actions=[
            wire.action(
                action_type, aid or f"ia-{action_type}", wire.BlockingType.NONE, None, **params
            )
        ],
    )
    return msg.to_json()


def van(x: float = 0.0, y: float = 0.0, **kw: Any) -> VanAgv:
    return VanAgv(MANUFACTURER, SERIAL, MAP, Pose(x, y, 0.0), **kw)


def run(agv: VanAgv, seconds: float, step: float = 0.5) -> None:
    """Advance ``agv`` by ``seconds`` in ``step`` increments (as the client's loop does)."""
    t = 0.0
    while t < seconds - 1e-9:
        agv.tick(min(step, seconds - t))
        t += step


def run_until(agv: VanAgv, predicate: Any, limit: float = 7200.0, step: float = 0.5) -> float:
    """Advance until ``predicate(agv)``; return the world seconds it took."""
    t = 0.0
    while not predicate(agv):
        assert t < limit, f"condition not met within {limit} s"
        agv.tick(step)
        t += step
    return t


def status(agv: VanAgv, action_id: str) -> wire.ActionStatus:
    return agv.actions[action_id].status


def errors(agv: VanAgv, kind: str | None = None) -> list[wire.Error]:
    return [e for e in agv.errors if kind is None or e.error_type == kind]
