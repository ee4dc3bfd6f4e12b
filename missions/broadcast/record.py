"""How a broadcast is kept in the record: one drone's share as ``Mission.plan``, and what the
flight produced (playback records, track) as ``Mission.result``, as plain JSON.

A share holds everything its run needs to fly without the planner: the flight plan, the
speaker's order (:class:`fleet.speaker.PlaySpec`), the clip and volume, which request,
occurrence and attempt it belongs to, and the indices of the first and last broadcasting
station (the phases). Playback records keep every field the payload reported, so the proof can
be computed again from the record at any time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fleet.drone import FlightPlan
from fleet.speaker import BroadcastArea, PlaybackRecord, PlaybackSample, PlaySpec
from missions.broadcast.planner import BroadcastPlan, DroneBroadcastPlan
from missions.broadcast.report import TrackRow
from missions.flight_json import item_from_json, item_to_json

PLAN_TYPE = "drone_broadcast"
"""``Mission.plan["type"]`` of a broadcast share."""


@dataclass(frozen=True)
class BroadcastShare:
    """One drone's share of one attempt at one occurrence of a broadcast request."""

    request_id: str
    occurrence: str
    """ISO 8601 UTC start instant of the occurrence it flies."""
    attempt: int
    """1 for the first flight of the occurrence, 2 for its first retry, ..."""
    share: int
    """0-based index of this drone's share."""
    shares: int
    """Flights of this attempt (one per drone, plus later sorties)."""
    flight_plan: FlightPlan
    play: PlaySpec
    clip_sha256: str
    clip_duration_s: float
    volume: int
    repeats: int
    altitude_m: float
    first_station_index: int
    """Flight plan item of the first broadcasting station (before it: take-off and transit)."""
    last_station_index: int
    """Flight plan item of the last station (after it: the way home)."""
    duration_s: float
    """Predicted flight, take-off to landing."""
    broadcast_s: float
    """Predicted seconds of sound."""
    predicted_coverage: float
    """Of the whole attempt (every share)."""
    sortie: int = 0
    """0: flown at once; n: the drone's (n+1)-th flight of this attempt, after it landed the
    previous one (mission ``after``) and had its battery swapped."""
    after: str | None = None
    """The mission of the same drone's previous sortie (``sortie`` > 0)."""


def station_indices(d: DroneBroadcastPlan) -> tuple[int, int]:
    """Flight plan items of the first and last station of a drone's route (item 0 is the
    take-off, item ``k + 1`` is route point ``k``)."""
    stations = [k for k, rp in enumerate(d.route) if rp.station]
    if not stations:
        return 1, len(d.route)
    return stations[0] + 1, stations[-1] + 1


def share_to_json(
    d: DroneBroadcastPlan,
    plan: BroadcastPlan,
    *,
    request_id: str,
    occurrence: str,
    attempt: int,
    share: int,
    clip_sha256: str,
) -> dict[str, Any]:
    """``Mission.plan`` of one drone's share."""
    first, last = station_indices(d)
    return {
        "type": PLAN_TYPE,
        "request_id": request_id,
        "occurrence": occurrence,
        "attempt": attempt,
        "share": share,
        "shares": len(plan.drones),
        "clip": {"sha256": clip_sha256, "duration_s": plan.clip_duration_s},
        "volume": plan.params.volume,
        "repeats": plan.params.repeats,
        "altitude_m": plan.params.altitude_m,
        "play": {
            "area": [[lat, lon] for lat, lon in d.play.area.vertices],
            "min_rel_alt_m": round(d.play.area.min_rel_alt_m, 2),
            "repeats": d.play.repeats,
            "period_s": d.play.period_s,
        },
        "first_station_index": first,
        "last_station_index": last,
        "stations": d.stations,
        "loops": d.loops,
        "duration_s": round(d.duration_s, 1),
        "broadcast_s": round(d.broadcast_s, 1),
        "predicted_coverage": round(plan.predicted_coverage, 4),
        "sortie": d.sortie,
        "items": [item_to_json(it) for it in d.flight_plan.items],
    }


def share_from_json(data: dict[str, Any]) -> BroadcastShare:
    play = data["play"]
    return BroadcastShare(
        request_id=data["request_id"],
        occurrence=data["occurrence"],
        attempt=int(data["attempt"]),
        share=int(data["share"]),
        shares=int(data["shares"]),
        flight_plan=FlightPlan(tuple(item_from_json(it) for it in data["items"])),
        play=PlaySpec(
            area=BroadcastArea(
                vertices=tuple((float(a), float(b)) for a, b in play["area"]),
                min_rel_alt_m=float(play["min_rel_alt_m"]),
            ),
            repeats=int(play["repeats"]),
            period_s=None if play["period_s"] is None else float(play["period_s"]),
        ),
        clip_sha256=data["clip"]["sha256"],
        clip_duration_s=float(data["clip"]["duration_s"]),
        volume=int(data["volume"]),
        repeats=int(data["repeats"]),
        altitude_m=float(data["altitude_m"]),
        first_station_index=int(data["first_station_index"]),
        last_station_index=int(data["last_station_index"]),
        duration_s=float(data["duration_s"]),
        broadcast_s=float(data["broadcast_s"]),
        predicted_coverage=float(data["predicted_coverage"]),
        sortie=int(data.get("sortie", 0)),
        after=data.get("after"),
    )


def is_share(plan: dict[str, Any]) -> bool:
    return plan.get("type") == PLAN_TYPE


# --- what a flight produced -----------------------------------------------------------------


def record_to_json(r: PlaybackRecord) -> dict[str, Any]:
    return {
        "payload_id": r.payload_id,
        "session_id": r.session_id,
        "seq": r.seq,
        "clip_sha256": r.clip_sha256,
        "started_at": r.started_at,
        "ended_at": r.ended_at,
        "completed": r.completed,
        "volume": r.volume,
        "end_reason": r.end_reason,
        "samples": [[s.t, s.lat, s.lon, round(s.rel_alt, 2)] for s in r.samples],
    }


def record_from_json(data: dict[str, Any]) -> PlaybackRecord:
    return PlaybackRecord(
        payload_id=data["payload_id"],
        session_id=data["session_id"],
        seq=int(data["seq"]),
        clip_sha256=data["clip_sha256"],
        started_at=float(data["started_at"]),
        ended_at=float(data["ended_at"]),
        completed=bool(data["completed"]),
        volume=int(data["volume"]),
        samples=tuple(
            PlaybackSample(float(t), float(lat), float(lon), float(alt))
            for t, lat, lon, alt in data["samples"]
        ),
        end_reason=str(data.get("end_reason", "")),
    )


def records_from_result(result: dict[str, Any]) -> list[PlaybackRecord]:
    """The playback records kept in a broadcast mission's result."""
    return [record_from_json(r) for r in result.get("playback", [])]


def track_to_json(rows: Iterable[TrackRow]) -> list[list[float]]:
    return [[t, lat, lon, round(alt, 2)] for t, lat, lon, alt in rows]


def track_from_json(rows: Sequence[Sequence[float]]) -> list[TrackRow]:
    return [(float(t), float(lat), float(lon), float(alt)) for t, lat, lon, alt in rows]
