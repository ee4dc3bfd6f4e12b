"""What a broadcast keeps in the record: a drone's share as ``Mission.plan`` (JSON, read back
exactly), and playback records and tracks as ``Mission.result``."""

from __future__ import annotations

import json

from fleet.drone import Waypoint
from missions.broadcast.planner import (
    BroadcastParams,
    DroneStart,
    plan_broadcast,
    predicted_records,
)
from missions.broadcast.record import (
    is_share,
    record_from_json,
    record_to_json,
    share_from_json,
    share_to_json,
    station_indices,
    track_from_json,
    track_to_json,
)
from missions.broadcast.request import CommunityArea, resolve_area
from tests.unit.broadcast.worlds import make_world, rect


def test_a_share_survives_the_record_and_marks_its_stations() -> None:
    world = make_world(
        {"C1": rect(60.0, -50.0, 300.0, 200.0)}, no_fly={"Z": (rect(0, 160, 40, 40), None)}
    )
    area = resolve_area(CommunityArea("C1"), world)
    pad = world.pads[0].location
    starts = [DroneStart("drone-1", pad.lat, pad.lon), DroneStart("drone-2", pad.lat, pad.lon)]
    plan = plan_broadcast(area, world, starts, 6.0, BroadcastParams(repeats=2, drones=2))
    for i, d in enumerate(plan.drones):
        data = share_to_json(
            d, plan, request_id="r-1", occurrence="2022-04-01T01:00:00+00:00", attempt=2,
            share=i, clip_sha256="ab" * 32,
        )  # fmt: skip
        data = json.loads(json.dumps(data))  # as the JSON column gives it back
        assert is_share(data) and not is_share({"type": "drone_delivery"})
        share = share_from_json(data)
        assert share.flight_plan == d.flight_plan
        assert share.play == d.play
        assert (share.request_id, share.attempt, share.share, share.shares) == ("r-1", 2, i, 2)
        assert share.clip_duration_s == 6.0 and share.repeats == 2 and share.volume == 100
        first, last = station_indices(d)
        assert (share.first_station_index, share.last_station_index) == (first, last)
        items = d.flight_plan.items
        # item k + 1 is route point k: stations between first and last, transits outside
        assert all(not d.route[k - 1].station for k in range(1, first))
        assert d.route[first - 1].station and d.route[last - 1].station
        assert all(not d.route[k - 1].station for k in range(last + 1, len(items) - 1))
        assert isinstance(items[first], Waypoint) and items[first].acceptance_m is not None


def test_records_and_tracks_survive_the_record() -> None:
    world = make_world({"C1": rect(60.0, -50.0, 160.0, 100.0)})
    area = resolve_area(CommunityArea("C1"), world)
    pad = world.pads[0].location
    plan = plan_broadcast(area, world, [DroneStart("d", pad.lat, pad.lon)], 4.0)
    records = predicted_records(plan, world, 1_700_000_000.0)
    assert records
    back = [record_from_json(json.loads(json.dumps(record_to_json(r)))) for r in records]
    for a, b in zip(records, back, strict=True):
        assert (a.seq, a.started_at, a.ended_at, a.completed, a.end_reason) == (
            b.seq,
            b.started_at,
            b.ended_at,
            b.completed,
            b.end_reason,
        )
        assert [(s.t, s.lat, s.lon) for s in a.samples] == [(s.t, s.lat, s.lon) for s in b.samples]
        assert all(
            abs(s.rel_alt - t.rel_alt) <= 0.005 for s, t in zip(a.samples, b.samples, strict=True)
        )
    rows = [(1.0, 22.5, 114.0, 59.999), (2.0, 22.50001, 114.00001, 60.0)]
    assert track_from_json(json.loads(json.dumps(track_to_json(rows)))) == [
        (1.0, 22.5, 114.0, 60.0),
        (2.0, 22.50001, 114.00001, 60.0),
    ]
