"""How the simulated van drives an order's edges: the points it passes and how fast it may go.

An edge of an order is driven along the road's shape when the van's own map (the world's road
network, by edge id) knows that edge between these two nodes, else straight to its end node
(:func:`edge_points`). The speed profile brakes for the corners on the way and at the end of
the edge (:func:`route_end_speed`), and at the node for its actions, the next corner or the
decision point (:func:`node_pass_speed`). Pure functions of the map frame (metres); the physics
is :mod:`sim.van.model`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from firmware_bridges.vda5050 import wire
from firmware_bridges.vda5050.wire import BlockingType
from sim.van.model import VanSpec, wrap_angle

XY = tuple[float, float]
"""A point in the map frame (metres)."""
PATH_MATCH_M = 2.0
"""A map path fits an order edge when its ends are this close to the edge's nodes."""


def near(a: XY, b: XY) -> bool:
    """Whether two points are the same place for matching map paths."""
    return math.dist(a, b) <= PATH_MATCH_M


def edge_points(
    paths: Mapping[str, tuple[XY, ...]], edge: wire.Edge, start: XY | None, end: wire.NodePosition
) -> list[XY]:
    """Points the van drives through on ``edge``: the road's shape from the van's own map
    when the map knows this edge between these nodes, else straight to the end node."""
    tip = (end.x, end.y)
    path = paths.get(edge.edge_id)
    if (
        path is not None
        and len(path) >= 2
        and near(path[-1], tip)
        and (start is None or near(path[0], start))
    ):
        return [*path[1:-1], tip]
    return [tip]


def route_end_speed(
    route: Sequence[XY], here: XY, spec: VanSpec, limit: float, node_speed: float
) -> float:
    """Speed allowed at the next route point: corners on the way and braking to the node."""
    v = node_speed
    for i in range(len(route) - 1, 0, -1):
        a = route[i - 2] if i >= 2 else here
        b, c = route[i - 1], route[i]
        turn = wrap_angle(
            math.atan2(c[1] - b[1], c[0] - b[0]) - math.atan2(b[1] - a[1], b[0] - a[0])
        )
        reach = math.sqrt(v * v + 2 * spec.deceleration_mps2 * math.dist(b, c))
        v = min(limit, spec.corner_speed(turn), reach)
    return v


def node_pass_speed(
    node: wire.Node,
    edge_states: Sequence[wire.Edge],
    node_states: Sequence[wire.Node],
    route: Sequence[XY],
    here: XY,
    spec: VanSpec,
    paths: Mapping[str, tuple[XY, ...]],
) -> float:
    """How fast the van may pass ``node`` at the end of the current edge (the first of
    ``edge_states``, driven along ``route`` from ``here``)."""
    if len(edge_states) < 2 or not edge_states[1].released:
        return 0.0  # decision point: stop unless the base grows
    if any(a.blocking_type is not BlockingType.NONE for a in node.actions):
        return 0.0
    nxt_edge, nxt_node = edge_states[1], node_states[1]
    at, there = node.node_position, nxt_node.node_position
    assert at is not None and there is not None
    before = route[-2] if len(route) >= 2 else here
    after = edge_points(paths, nxt_edge, (at.x, at.y), there)[0]
    heading_in = math.atan2(at.y - before[1], at.x - before[0])
    heading_out = math.atan2(after[1] - at.y, after[0] - at.x)
    corner = spec.corner_speed(wrap_angle(heading_out - heading_in))
    return min(corner, nxt_edge.max_speed or math.inf)
