"""Wire format of the speaker payload protocol over MQTT (``docs/protocols/speaker.md``).

Topics are ``{namespace}/v1/{payload_id}/{channel}``; every message is one UTF-8 JSON object
carrying ``version`` ("major.minor") and ``timestamp`` (Unix epoch milliseconds of the sender's
clock). The major version is in the topic and in ``version``; a receiver rejects another major
and accepts any minor, ignoring fields it does not know (minor versions only add optional
fields). Times in messages are epoch milliseconds; positions WGS84 degrees and metres above the
payload's take-off point.

This is a wire module: the simulators in ``sim/`` import it as a real payload shares its
protocol definition. Domain types never appear here (see ``translate.py``).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from enum import IntEnum, StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

PROTOCOL_MAJOR = 1
"""Major version: in topics (``v1``) and messages."""
PROTOCOL_VERSION = "1.0"
"""Version written into every message."""
DEFAULT_NAMESPACE = "speaker"
"""First topic level(s) unless configured otherwise."""
PAYLOAD_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
"""Payload ids: letters, digits, ``_ . -`` (no MQTT wildcards or separators)."""
SHA256_RE = r"^[0-9a-f]{64}$"
"""Clip checksums: lower-case hex SHA-256."""
MAX_AREA_VERTICES = 200
"""Most vertices of a broadcast area."""
MAX_SAMPLES = 100_000
"""Most position samples in one playback record."""


class Channel(StrEnum):
    """Last topic level: what a message is."""

    INFO = "info"
    """Payload -> service, retained, QoS 1: what the payload is and which drone carries it."""
    CONNECTION = "connection"
    """Payload -> service, retained, QoS 1, also the last will: ONLINE / OFFLINE / broken."""
    COMMAND = "command"
    """Service -> payload, QoS 1: one method call."""
    REPLY = "reply"
    """Payload -> service, QoS 1: the outcome of a command."""
    STATE = "state"
    """Payload -> service, retained, QoS 0: current state, on change and every second."""
    PLAYBACK = "playback"
    """Payload -> service, QoS 1: one record per play (completed or cut)."""
    EVENT = "event"
    """Payload -> service, QoS 1: progress, session start/end, errors."""


class Method(StrEnum):
    """Commands a payload accepts."""

    CLIP_LOAD = "clip_load"
    """Fetch a clip over HTTP(S), check its SHA-256, make it current."""
    PLAY_AREA = "play_area"
    """Start a broadcast session: loop the clip while inside the area."""
    PLAY_STOP = "play_stop"
    """End the current session."""
    VOLUME_SET = "volume_set"
    """Set the output volume (0..100 %)."""
    RECORDS_RESEND = "records_resend"
    """Publish again the playback records from a sequence number on."""


class Result(IntEnum):
    """``result`` of a reply: 0 is success."""

    OK = 0
    """Done."""
    BAD_REQUEST = 1
    """The command is malformed or a field is out of range."""
    UNKNOWN_METHOD = 2
    """No such method."""
    UNSUPPORTED_VERSION = 3
    """Another major protocol version."""
    NO_CLIP = 4
    """``play_area`` without a loaded clip."""
    BUSY = 5
    """A clip is being loaded."""
    FETCH_FAILED = 6
    """The clip URL could not be fetched."""
    CHECKSUM_MISMATCH = 7
    """The fetched bytes do not have the announced SHA-256."""
    BAD_AUDIO = 8
    """The clip is not audio the payload can play."""
    INTERNAL = 9
    """The payload failed."""


class PayloadState(StrEnum):
    """``state`` field of state messages."""

    IDLE = "idle"
    """No clip."""
    LOADING = "loading"
    """Fetching a clip."""
    READY = "ready"
    """Clip loaded, no session."""
    WAITING = "waiting"
    """Session active, outside the area or too low: silent."""
    PLAYING = "playing"
    """Session active, sounding."""
    ERROR = "error"
    """A fault (``error`` says which)."""


class ConnectionState(StrEnum):
    """``state`` field of connection messages."""

    ONLINE = "ONLINE"
    """Connected and working."""
    OFFLINE = "OFFLINE"
    """Disconnected on purpose."""
    CONNECTIONBROKEN = "CONNECTIONBROKEN"
    """The last will: the payload vanished."""


class EventKind(StrEnum):
    """``kind`` of event messages."""

    CLIP_PROGRESS = "clip_progress"
    """Loading progress of a clip (``step``, ``percent``)."""
    SESSION_STARTED = "session_started"
    """A broadcast session began."""
    SESSION_ENDED = "session_ended"
    """A session ended (``reason``, ``plays_completed``, ``last_seq``)."""
    ERROR = "error"
    """Something went wrong (``code``, ``message``), e.g. a malformed message."""


class EndReason(StrEnum):
    """Why a play or a session ended."""

    COMPLETED = "completed"
    """The whole clip sounded (plays) / the repeats are done (sessions)."""
    LEFT_AREA = "left_area"
    """The drone left the area: silent at once."""
    TOO_LOW = "too_low"
    """The drone went below the minimum height."""
    STOPPED = "stopped"
    """``play_stop`` or a new session."""
    ERROR = "error"
    """A fault."""


class WireError(Exception):
    """A message that is not valid JSON or not a valid message of its channel."""

    def __init__(self, code: str, reason: str, tid: str | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.tid = tid


EpochMs = Annotated[int, Field(ge=0, le=10**14)]
Lat = Annotated[float, Field(ge=-90.0, le=90.0, allow_inf_nan=False)]
Lon = Annotated[float, Field(ge=-180.0, le=180.0, allow_inf_nan=False)]
Height = Annotated[float, Field(ge=-1000.0, le=10000.0, allow_inf_nan=False)]
Sha256 = Annotated[str, Field(pattern=SHA256_RE)]
Tid = Annotated[str, Field(min_length=1, max_length=64)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Message(_Wire):
    version: str = PROTOCOL_VERSION
    timestamp: EpochMs

    @field_validator("version")
    @classmethod
    def _major(cls, v: str) -> str:
        major, _, minor = v.partition(".")
        if not major.isdigit() or (minor and not minor.isdigit()):
            raise ValueError(f"version {v!r} is not major.minor")
        if int(major) != PROTOCOL_MAJOR:
            raise ValueError(f"unsupported major version {major} (this is {PROTOCOL_MAJOR})")
        return v


class ErrorInfo(_Wire):
    code: str = Field(max_length=64)
    message: str = Field("", max_length=1000)


# --- payload -> service ------------------------------------------------------------------


class InfoMsg(_Message):
    payload_id: str
    host_vehicle: str | None = Field(None, max_length=128)
    """Fleet id of the drone carrying the payload."""
    model: str = Field("", max_length=128)
    firmware: str = Field("", max_length=64)
    source_level_db: float | None = Field(None, ge=40, le=160)
    """dB SPL at 1 m, full volume."""
    formats: list[str] = Field(default_factory=lambda: ["wav"])
    max_clip_s: float | None = Field(None, gt=0)


class ConnectionMsg(_Message):
    state: ConnectionState


class ClipInfo(_Wire):
    sha256: Sha256
    duration_ms: int = Field(ge=0)
    size_bytes: int = Field(ge=0)


class SessionInfo(_Wire):
    session_id: Tid
    repeats: int = Field(ge=0)
    period_ms: int | None = Field(None, ge=0)
    plays_started: int = Field(ge=0)
    plays_completed: int = Field(ge=0)
    inside_area: bool


class PositionInfo(_Wire):
    lat: Lat
    lon: Lon
    rel_alt: Height


class StateMsg(_Message):
    state: PayloadState
    volume: int = Field(ge=0, le=100)
    clip: ClipInfo | None = None
    session: SessionInfo | None = None
    position: PositionInfo | None = None
    error: ErrorInfo | None = None
    last_seq: int = Field(-1, ge=-1)
    """Sequence number of the last playback record (-1: none yet)."""


Sample = tuple[EpochMs, Lat, Lon, Height]
"""[t ms, lat, lon, rel_alt]."""


class PlaybackMsg(_Message):
    session_id: Tid
    seq: int = Field(ge=0)
    clip_sha256: Sha256
    started_at: EpochMs
    ended_at: EpochMs
    completed: bool
    end_reason: EndReason
    volume: int = Field(ge=0, le=100)
    samples: list[Sample] = Field(min_length=1, max_length=MAX_SAMPLES)

    @model_validator(mode="after")
    def _times(self) -> PlaybackMsg:
        if self.ended_at < self.started_at:
            raise ValueError("ended_at is before started_at")
        ts = [s[0] for s in self.samples]
        if any(b < a for a, b in itertools.pairwise(ts)):
            raise ValueError("samples are not in time order")
        return self


class ReplyMsg(_Message):
    tid: Tid
    method: str = Field(max_length=64)
    result: int
    error: ErrorInfo | None = None
    output: dict[str, Any] = Field(default_factory=dict)


class EventMsg(_Message):
    kind: EventKind
    tid: Tid | None = None
    session_id: Tid | None = None
    code: str | None = Field(None, max_length=64)
    message: str = Field("", max_length=1000)
    data: dict[str, Any] = Field(default_factory=dict)


# --- service -> payload ------------------------------------------------------------------


class ClipLoadData(_Wire):
    url: str = Field(min_length=8, max_length=2048)
    sha256: Sha256

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("url must be http:// or https://")
        return v


class PlayAreaData(_Wire):
    area: list[tuple[Lat, Lon]] = Field(min_length=3, max_length=MAX_AREA_VERTICES)
    repeats: int = Field(0, ge=0, le=10_000)
    """0: until ``play_stop``."""
    period_ms: int | None = Field(None, ge=100, le=3_600_000)
    """Start-to-start; None: back to back."""
    min_rel_alt_m: float = Field(0.0, ge=0.0, le=10_000.0)


class PlayStopData(_Wire):
    pass


class VolumeSetData(_Wire):
    volume: int = Field(ge=0, le=100)


class RecordsResendData(_Wire):
    from_seq: int = Field(0, ge=0)


METHOD_DATA: dict[Method, type[_Wire]] = {
    Method.CLIP_LOAD: ClipLoadData,
    Method.PLAY_AREA: PlayAreaData,
    Method.PLAY_STOP: PlayStopData,
    Method.VOLUME_SET: VolumeSetData,
    Method.RECORDS_RESEND: RecordsResendData,
}
"""Data model of each method."""


class CommandMsg(_Message):
    tid: Tid
    method: Method
    data: dict[str, Any] = Field(default_factory=dict)


# --- topics and codec ----------------------------------------------------------------------


def check_namespace(namespace: str) -> str:
    ns = namespace.strip("/")
    if not ns or any(c in ns for c in "#+$") or "//" in ns:
        raise ValueError(f"bad topic namespace {namespace!r}")
    return ns


def topic(namespace: str, payload_id: str, channel: Channel | str) -> str:
    """``{namespace}/v1/{payload_id}/{channel}``."""
    return f"{namespace}/v{PROTOCOL_MAJOR}/{payload_id}/{channel}"


def split_topic(namespace: str, topic_name: str) -> tuple[str, Channel] | None:
    """(payload id, channel) of a topic under ``namespace``; None when it is not one."""
    head = f"{namespace}/v{PROTOCOL_MAJOR}/"
    if not topic_name.startswith(head):
        return None
    rest = topic_name[len(head) :].split("/")
    if len(rest) != 2 or not PAYLOAD_ID_RE.match(rest[0]):
        return None
    try:
        return rest[0], Channel(rest[1])
    except ValueError:
        return None


M = TypeVar("M", bound=BaseModel)


def encode(msg: BaseModel) -> bytes:
    """A message as compact UTF-8 JSON."""
    return msg.model_dump_json(exclude_none=True).encode()


def _loads(raw: bytes | bytearray) -> Any:
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError("bad_json", f"not UTF-8: {exc}") from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (json.JSONDecodeError, ValueError) as exc:
        raise WireError("bad_json", f"not JSON: {exc}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _reason(exc: PydanticValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "message"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def decode(model: type[M], raw: bytes | bytearray) -> M:
    """Parse and validate one message; raises :class:`WireError`."""
    data = _loads(raw)
    if not isinstance(data, dict):
        raise WireError("bad_message", "a message is a JSON object")
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        tid = data.get("tid") if isinstance(data.get("tid"), str) else None
        code = (
            "unsupported_version"
            if any(e["loc"] == ("version",) for e in exc.errors(include_url=False))
            else "bad_message"
        )
        raise WireError(code, _reason(exc), tid) from None


def decode_command(raw: bytes | bytearray) -> tuple[CommandMsg, _Wire]:
    """A command and its validated data; :class:`WireError` carries the ``tid`` when known."""
    data = _loads(raw)
    if not isinstance(data, dict):
        raise WireError("bad_message", "a message is a JSON object")
    tid = data.get("tid") if isinstance(data.get("tid"), str) else None
    method = data.get("method")
    if isinstance(method, str) and method not in {m.value for m in Method}:
        raise WireError("unknown_method", f"unknown method {method!r}", tid)
    cmd = decode(CommandMsg, raw)
    try:
        args = METHOD_DATA[cmd.method].model_validate(cmd.data)
    except PydanticValidationError as exc:
        raise WireError("bad_request", f"data: {_reason(exc)}", cmd.tid) from None
    return cmd, args


def ms(seconds: float) -> int:
    """Epoch seconds to epoch milliseconds."""
    return math.floor(seconds * 1000.0 + 0.5)


RESULT_OF_CODE = {
    "bad_json": Result.BAD_REQUEST,
    "bad_message": Result.BAD_REQUEST,
    "bad_request": Result.BAD_REQUEST,
    "unknown_method": Result.UNKNOWN_METHOD,
    "unsupported_version": Result.UNSUPPORTED_VERSION,
}
"""Reply result of each :class:`WireError` code."""
