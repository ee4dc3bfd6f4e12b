"""Speaker payload wire messages <-> domain types (:mod:`fleet.speaker`).

The only place where the speaker bridge looks inside wire messages: the link hands raw
validated messages here and gets domain objects back, and builds commands from domain requests
here. Epoch milliseconds on the wire become epoch seconds in the domain.
"""

from __future__ import annotations

from pydantic import ValidationError as PydanticValidationError

from firmware_bridges.speaker import wire
from fleet.errors import CommandRejected, VehicleError
from fleet.speaker import (
    ClipRef,
    LoadedClip,
    PlaybackRecord,
    PlaybackSample,
    PlaySpec,
    SpeakerState,
    SpeakerStatus,
)

STATE = {
    wire.PayloadState.IDLE: SpeakerState.IDLE,
    wire.PayloadState.LOADING: SpeakerState.LOADING,
    wire.PayloadState.READY: SpeakerState.READY,
    wire.PayloadState.WAITING: SpeakerState.WAITING,
    wire.PayloadState.PLAYING: SpeakerState.PLAYING,
    wire.PayloadState.ERROR: SpeakerState.ERROR,
}
"""Payload state on the wire -> domain state."""


def command(tid: str, method: wire.Method, data: wire._Wire, now_s: float) -> wire.CommandMsg:
    return wire.CommandMsg(
        timestamp=wire.ms(now_s),
        tid=tid,
        method=method,
        data=data.model_dump(mode="json", exclude_none=True),
    )


def clip_load(clip: ClipRef) -> wire.ClipLoadData:
    return wire.ClipLoadData(url=clip.url, sha256=clip.sha256)


def play_area(spec: PlaySpec) -> wire.PlayAreaData:
    return wire.PlayAreaData(
        area=[(lat, lon) for lat, lon in spec.area.vertices],
        repeats=spec.repeats,
        period_ms=None if spec.period_s is None else wire.ms(spec.period_s),
        min_rel_alt_m=spec.area.min_rel_alt_m,
    )


def loaded_clip(output: dict[str, object], sha256: str) -> LoadedClip:
    """The ``output`` of a successful ``clip_load`` reply."""
    try:
        info = wire.ClipInfo.model_validate({"sha256": sha256, **output})
    except PydanticValidationError as exc:
        raise VehicleError(
            f"the speaker described the loaded clip wrongly: {exc.errors()[0]['msg']}",
            sha256=sha256,
        ) from None
    return LoadedClip(info.sha256, info.duration_ms / 1000.0, info.size_bytes)


def rejection(payload_id: str, reply: wire.ReplyMsg) -> CommandRejected:
    """The error a failed reply becomes."""
    try:
        result_name = wire.Result(reply.result).name.lower()
    except ValueError:
        result_name = str(reply.result)
    code = reply.error.code if reply.error else result_name
    text = reply.error.message if reply.error and reply.error.message else result_name
    return CommandRejected(
        f"speaker {payload_id} refused {reply.method}: {text}",
        vehicle_id=payload_id,
        method=reply.method,
        result=result_name,
        code=code,
    )


def update_status(status: SpeakerStatus, msg: wire.StateMsg) -> None:
    """Write a state message into the payload's live status (in place)."""
    status.state = STATE[msg.state]
    status.volume = msg.volume
    status.clip = (
        None
        if msg.clip is None
        else LoadedClip(msg.clip.sha256, msg.clip.duration_ms / 1000.0, msg.clip.size_bytes)
    )
    if msg.session is not None:
        status.session_id = msg.session.session_id
        status.plays_started = msg.session.plays_started
        status.plays_completed = msg.session.plays_completed
        status.inside_area = msg.session.inside_area
    else:
        status.inside_area = False
    status.error = msg.error.code if msg.error else None
    status.extra["last_seq"] = msg.last_seq
    if msg.position is not None:
        status.extra["position"] = (msg.position.lat, msg.position.lon, msg.position.rel_alt)


def record(payload_id: str, msg: wire.PlaybackMsg) -> PlaybackRecord:
    """A playback message as a domain record."""
    return PlaybackRecord(
        payload_id=payload_id,
        session_id=msg.session_id,
        seq=msg.seq,
        clip_sha256=msg.clip_sha256,
        started_at=msg.started_at / 1000.0,
        ended_at=msg.ended_at / 1000.0,
        completed=msg.completed,
        volume=msg.volume,
        samples=tuple(
            PlaybackSample(t / 1000.0, lat, lon, alt) for t, lat, lon, alt in msg.samples
        ),
        end_reason=msg.end_reason.value,
    )
