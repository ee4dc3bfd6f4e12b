"""Event metadata in libevents' JSON format, and EVENT messages rendered with it.

A PX4 EVENT (MAVLink 410) carries only an id and up to 40 bytes of packed arguments; what it
means lives in the firmware's event metadata (``all_events.json``, downloaded from the vehicle
through the component-information protocol by ``firmware_bridges.mavlink.metadata``). The
format and its semantics are defined by libevents (https://github.com/mavlink/libevents),
which QGroundControl embeds in C++. libevents' Python parser is not published on PyPI (there is
no ``libevents`` or ``libevents-parse`` package), so this module implements the same rules,
following the C++ parser QGroundControl uses where the two libevents parsers differ:

* **File**: ``{"version": >= 1, "components": {"<component id>": {"namespace": ...,
  "enums": {...}, "event_groups": {"<group>": {"events": {"<sub id>": {...}}}},
  "supported_protocols": [...]}}}``. An event's id is ``component << 24 | sub_id``; its
  definition has ``name``, ``message``, optional ``description``, ``type`` (``summary`` for the
  protocol summaries) and ``arguments`` (``name``, ``type``). An argument type is a base type
  (``uint8_t`` .. ``int64_t``, ``float``) or an enum, ``name`` in the event's own namespace or
  ``namespace::name``. Events whose argument type is unknown are dropped; the first definition
  of an id wins.
* **Arguments** are packed little-endian, back to back, in declaration order (bytes past the 40
  of EVENT.arguments read as zero). An enum shows its entry's ``description`` (``(unknown: N)``
  otherwise); a bitfield enum shows the descriptions of its set bits joined by its
  ``separator`` (default ``|``).
* **Message and description text**: placeholders, units and tags as libevents renders them
  (:mod:`.event_text`); the service renders the ``normal`` profile.

The module also builds such files (:func:`events_document`) from declarative specs, for the
bridge's built-in fallback (:mod:`.px4_events`) and for the simulator's own metadata. It does no
I/O and imports nothing of the service: ``sim/`` may use it.
"""

from __future__ import annotations

import json
import lzma
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from firmware_bridges.mavlink.wire.event_text import PROFILE_NORMAL, Value, process_message

ARGUMENTS_LEN = 40
"""Size of EVENT.arguments."""
XZ_MAGIC = b"\xfd7zXZ\x00"
"""First bytes of an xz container."""

BASE_TYPES: dict[str, struct.Struct] = {
    "uint8_t": struct.Struct("<B"),
    "int8_t": struct.Struct("<b"),
    "uint16_t": struct.Struct("<H"),
    "int16_t": struct.Struct("<h"),
    "uint32_t": struct.Struct("<I"),
    "int32_t": struct.Struct("<i"),
    "uint64_t": struct.Struct("<Q"),
    "int64_t": struct.Struct("<q"),
    "float": struct.Struct("<f"),
}
"""libevents' base argument types and their little-endian codecs."""

STRUCT_CODE_TYPES: dict[str, str] = {
    "B": "uint8_t",
    "b": "int8_t",
    "H": "uint16_t",
    "h": "int16_t",
    "I": "uint32_t",
    "i": "int32_t",
    "Q": "uint64_t",
    "q": "int64_t",
    "f": "float",
}
"""Python struct codes of the base types (for tables written with struct codes)."""


class MetadataError(ValueError):
    """An event metadata file is not valid JSON in libevents' format."""


def fnv1a_32(text: str) -> int:
    """32-bit FNV-1a hash, as PX4's ``hash_32_fnv1a_const`` (event sub ids)."""
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def event_sub_id(name: str) -> int:
    """The 24-bit sub id PX4's ``events::ID(name)`` gives an event name."""
    return fnv1a_32(name) & 0xFFFFFF


# -- definitions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnumEntry:
    """One value of an enum."""

    value: int
    name: str
    description: str


@dataclass(frozen=True, slots=True)
class EnumDef:
    """An enum (or bitfield) argument type."""

    namespace: str
    name: str
    base_type: str
    entries: Mapping[int, EnumEntry] = field(repr=False)
    is_bitfield: bool = False
    separator: str = "|"
    description: str = ""

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}::{self.name}"

    def display(self, value: int) -> str:
        """The value as libevents shows it (descriptions; set bits joined for bitfields)."""
        if not self.is_bitfield:
            entry = self.entries.get(value)
            return entry.description if entry is not None else f"(unknown: {value})"
        parts = []
        for bit in range(BASE_TYPES[self.base_type].size * 8):
            mask = 1 << bit
            if value & mask:
                entry = self.entries.get(mask)
                parts.append(entry.description if entry is not None else f"(unknown: {value})")
        return self.separator.join(parts)

    def bit_names(self, value: int) -> tuple[str, ...]:
        """Names of the entries whose bit is set in a bitfield value (unknown bits left out,
        so PX4's "all modes" 0xFFFFFFFF names every group the enum knows)."""
        return tuple(e.name for bit, e in sorted(self.entries.items()) if value & bit)


@dataclass(frozen=True, slots=True)
class ArgumentDef:
    """One declared argument of an event."""

    name: str
    base_type: str
    enum: EnumDef | None = None


@dataclass(frozen=True, slots=True)
class EventDef:
    """The definition of one event id."""

    event_id: int
    name: str
    namespace: str
    group: str
    message: str
    description: str = ""
    type: str = ""
    arguments: tuple[ArgumentDef, ...] = ()

    def decode(self, arguments: bytes) -> tuple[Value, ...]:
        """The argument values packed in EVENT.arguments."""
        raw = bytes(arguments)
        if len(raw) < ARGUMENTS_LEN:
            raw = raw.ljust(ARGUMENTS_LEN, b"\x00")
        values: list[Value] = []
        offset = 0
        for arg in self.arguments:
            codec = BASE_TYPES[arg.base_type]
            if offset + codec.size > len(raw):
                values.append(0)  # libevents: past the buffer reads as zero
            else:
                values.append(codec.unpack_from(raw, offset)[0])
            offset += codec.size
        return tuple(values)


@dataclass(frozen=True, slots=True)
class RenderedEvent:
    """An EVENT with its definition applied (or, for an unknown id, its raw form)."""

    event_id: int
    arguments: bytes
    """EVENT.arguments as received."""
    message: str
    """Rendered message (``event 0x........ args=..`` when the id is unknown)."""
    description: str = ""
    name: str | None = None
    """The event's name (e.g. ``check_modes_offboard_signal``); None when unknown."""
    group: str = ""
    """Its group (``default``, ``arming_check``, ``health``, ...); empty when unknown."""
    type: str = ""
    """``summary`` for protocol summaries, ``append_health_and_arming_messages``, or empty."""
    values: tuple[Value, ...] = ()
    """Decoded argument values (raw numbers, enums not resolved)."""
    definition: EventDef | None = field(default=None, repr=False)

    @property
    def known(self) -> bool:
        return self.definition is not None

    @property
    def is_summary(self) -> bool:
        return self.type == "summary"

    def enum_of(self, index: int) -> EnumDef | None:
        """The enum type of argument ``index`` (0-based), if it has one."""
        if self.definition is None or index >= len(self.definition.arguments):
            return None
        return self.definition.arguments[index].enum


def render_unknown(event_id: int, arguments: bytes) -> RenderedEvent:
    """An event nobody has a definition for: its id and significant argument bytes in hex."""
    raw = bytes(arguments).rstrip(b"\x00")
    suffix = f" args={raw.hex()}" if raw else ""
    return RenderedEvent(event_id, bytes(arguments), f"event {event_id:#010x}{suffix}")


# -- the metadata ---------------------------------------------------------------------------


@dataclass(slots=True)
class EventMetadata:
    """Parsed event definitions of one or more components, by event id."""

    events: dict[int, EventDef] = field(default_factory=dict)
    enums: dict[str, EnumDef] = field(default_factory=dict)
    """By qualified name (``px4::navigation_mode_group_t``)."""
    protocols: dict[int, frozenset[str]] = field(default_factory=dict)
    """``supported_protocols`` by component id (PX4: ``health_and_arming_check``)."""
    source: str = ""
    """Where the definitions came from (for logs)."""

    def __len__(self) -> int:
        return len(self.events)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self.events

    def get(self, event_id: int) -> EventDef | None:
        return self.events.get(event_id)

    def by_name(self, name: str, component: int | None = None) -> EventDef | None:
        """The definition of an event name (of ``component``, when given)."""
        for d in self.events.values():
            if d.name == name and (component is None or d.event_id >> 24 == component):
                return d
        return None

    def enum(self, qualified_name: str) -> EnumDef | None:
        return self.enums.get(qualified_name)

    def supports(self, protocol: str, component: int) -> bool:
        return protocol in self.protocols.get(component, frozenset())

    def render(
        self, event_id: int, arguments: bytes, profile: str = PROFILE_NORMAL
    ) -> RenderedEvent | None:
        """The event rendered with its definition; None when the id is not defined here."""
        d = self.events.get(event_id)
        if d is None:
            return None
        values = d.decode(arguments)
        return RenderedEvent(
            event_id=event_id,
            arguments=bytes(arguments),
            message=process_message(d.message, values, d.arguments, profile),
            description=process_message(d.description, values, d.arguments, profile),
            name=d.name,
            group=d.group,
            type=d.type,
            values=values,
            definition=d,
        )

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], source: str = "") -> EventMetadata:
        """Parse a decoded JSON document (libevents' loading rules, see the module docs)."""
        try:
            return cls._parse(doc, source)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, MetadataError):
                raise
            raise MetadataError(f"bad event metadata ({source or 'document'}): {exc!r}") from exc

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "") -> EventMetadata:
        """Parse a JSON file, xz-compressed or not."""
        try:
            if data.startswith(XZ_MAGIC):
                data = lzma.decompress(data)
            doc = json.loads(data.decode("utf-8"))
        except (lzma.LZMAError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MetadataError(f"cannot read event metadata ({source or 'file'}): {exc}") from exc
        if not isinstance(doc, Mapping):
            raise MetadataError(f"event metadata ({source or 'file'}) is not a JSON object")
        return cls.from_document(doc, source)

    @classmethod
    def _parse(cls, doc: Mapping[str, Any], source: str) -> EventMetadata:
        version = doc.get("version", 0)
        if not isinstance(version, int) or version < 1:
            raise MetadataError(f"unexpected event metadata version {version!r}")
        md = cls(source=source)
        components: Mapping[str, Any] = doc.get("components") or {}
        # enums first: events may use the enums of another namespace
        for comp in components.values():
            namespace = comp.get("namespace")
            if namespace is None:
                continue
            for enum_name, e in (comp.get("enums") or {}).items():
                base = e["type"]
                if base not in BASE_TYPES:
                    continue
                entries = {
                    int(k): EnumEntry(int(k), v["name"], v["description"])
                    for k, v in (e.get("entries") or {}).items()
                }
                md.enums[f"{namespace}::{enum_name}"] = EnumDef(
                    namespace,
                    enum_name,
                    base,
                    entries,
                    bool(e.get("is_bitfield", False)),
                    e.get("separator", "|"),
                    e.get("description", ""),
                )
        for comp_key, comp in components.items():
            namespace = comp.get("namespace")
            if namespace is None:
                continue
            component = int(comp_key) & 0xFF
            for group_name, group in (comp.get("event_groups") or {}).items():
                for sub_key, ev in (group.get("events") or {}).items():
                    event_id = (int(sub_key) & 0xFFFFFF) | component << 24
                    args = md._arguments(namespace, ev.get("arguments") or [])
                    if args is None or event_id in md.events:
                        continue  # unknown argument type, or a duplicate: libevents skips both
                    md.events[event_id] = EventDef(
                        event_id,
                        ev["name"],
                        namespace,
                        group_name,
                        ev["message"],
                        ev.get("description", ""),
                        ev.get("type", ""),
                        args,
                    )
            protocols = comp.get("supported_protocols")
            if protocols:
                md.protocols[component] = md.protocols.get(component, frozenset()) | frozenset(
                    str(p) for p in protocols
                )
        return md

    def _arguments(
        self, namespace: str, args: Iterable[Mapping[str, Any]]
    ) -> tuple[ArgumentDef, ...] | None:
        out = []
        for a in args:
            type_name = a["type"]
            if type_name in BASE_TYPES:
                out.append(ArgumentDef(a["name"], type_name))
                continue
            qualified = type_name if "::" in type_name else f"{namespace}::{type_name}"
            enum = self.enums.get(qualified)
            if enum is None:
                return None
            out.append(ArgumentDef(a["name"], enum.base_type, enum))
        return tuple(out)


# -- building metadata files (fallback tables, the simulator) ----------------------------------


@dataclass(frozen=True, slots=True)
class EnumSpec:
    """An enum to write into a metadata file."""

    name: str
    base_type: str
    entries: Mapping[int, tuple[str, str]]
    """value -> (name, description)."""
    is_bitfield: bool = False
    description: str = ""


@dataclass(frozen=True, slots=True)
class EventSpec:
    """An event to write into a metadata file; its sub id is ``event_sub_id(name)``."""

    name: str
    message: str
    arguments: tuple[tuple[str, str], ...] = ()
    """(name, type) of each argument: a base type or an enum name."""
    group: str = "default"
    type: str = ""
    description: str = ""

    @property
    def sub_id(self) -> int:
        return event_sub_id(self.name)

    def event_id(self, component: int) -> int:
        return self.sub_id | (component & 0xFF) << 24


def events_document(
    component: int,
    namespace: str,
    events: Iterable[EventSpec],
    enums: Iterable[EnumSpec] = (),
    supported_protocols: Iterable[str] = (),
) -> dict[str, Any]:
    """A libevents metadata document (version 2, as PX4 writes it) for one component."""
    groups: dict[str, dict[str, Any]] = {}
    for spec in events:
        ev: dict[str, Any] = {"name": spec.name, "message": spec.message}
        if spec.description:
            ev["description"] = spec.description
        if spec.type:
            ev["type"] = spec.type
        if spec.arguments:
            ev["arguments"] = [{"name": n, "type": t} for n, t in spec.arguments]
        bucket = groups.setdefault(spec.group, {"events": {}})["events"]
        key = str(spec.sub_id)
        if key in bucket:
            raise ValueError(f"event {spec.name} collides with {bucket[key]['name']}")
        bucket[key] = ev
    comp: dict[str, Any] = {"namespace": namespace, "event_groups": groups}
    enum_docs: dict[str, Any] = {}
    for e in enums:
        doc: dict[str, Any] = {
            "type": e.base_type,
            "entries": {str(v): {"name": n, "description": d} for v, (n, d) in e.entries.items()},
        }
        if e.is_bitfield:
            doc["is_bitfield"] = True
        if e.description:
            doc["description"] = e.description
        enum_docs[e.name] = doc
    if enum_docs:
        comp["enums"] = enum_docs
    protocols = list(supported_protocols)
    if protocols:
        comp["supported_protocols"] = protocols
    return {"version": 2, "components": {str(component): comp}}


def struct_types(codes: str) -> tuple[str, ...]:
    """libevents base types of a string of struct codes (``"HHf"``)."""
    return tuple(STRUCT_CODE_TYPES[c] for c in codes)
