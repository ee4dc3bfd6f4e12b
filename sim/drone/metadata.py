"""The sim's component metadata: one declarative table of its events, served like PX4's.

PX4 generates ``all_events.json`` (libevents' format) from its source at build time, lists it
in ``component_general.json`` and serves both, xz-compressed, from ``etc/extras/`` over MAVLink
FTP; COMPONENT_METADATA (and the older COMPONENT_INFORMATION) points a ground station at
``mftp://etc/extras/component_general.json.xz``. A sim vehicle does the same from this table:

* :data:`SIM_EVENTS` declares every event a sim vehicle can send through its
  :class:`sim.drone.events.EventLog`: PX4's navigator events the sim raises (the templates of
  :data:`firmware_bridges.mavlink.wire.px4_events.KNOWN_EVENTS`), the two summaries of PX4's
  health-and-arming-checks report, and the checks :mod:`sim.drone.arming_report` can report
  (:data:`SIM_CHECKS`, PX4's names and messages; add a check here before reporting it);
* :func:`files` builds, once per process, the two files (event ids are PX4's:
  ``fnv1a_32(name) & 0xFFFFFF`` in component 1, namespace ``px4``) with their MAVLink CRC32;
* :func:`answer` is the COMPONENT_METADATA / COMPONENT_INFORMATION a vehicle sends when asked
  with MAV_CMD_REQUEST_MESSAGE; :class:`sim.drone.ftp_server.FtpServer` serves :func:`files`.

There is no hand-written JSON: the enums and summary definitions are the bridge's PX4 wire
definitions (:mod:`firmware_bridges.mavlink.wire.px4_events`), the file format comes from
:func:`firmware_bridges.mavlink.wire.event_metadata.events_document`.
"""

from __future__ import annotations

import functools
import json
import lzma
from dataclasses import dataclass
from typing import Any

from firmware_bridges.mavlink.wire import component_info, px4_events
from firmware_bridges.mavlink.wire.component_info import (
    COMP_METADATA_TYPE_EVENTS,
    MSG_ID_COMPONENT_INFORMATION,
    MSG_ID_COMPONENT_METADATA,
    MetadataEntry,
)
from firmware_bridges.mavlink.wire.event_metadata import EnumSpec, EventSpec, events_document
from firmware_bridges.mavlink.wire.messages import Message

GENERAL_PATH = "etc/extras/component_general.json.xz"
"""Where PX4 serves its general metadata file (and so does the sim)."""
EVENTS_PATH = "etc/extras/all_events.json.xz"
"""Where PX4 serves its events metadata file."""
NAMESPACE = "px4"
"""Namespace of the events (PX4's, since the sim sends PX4's event ids)."""


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """A health or arming check the sim can report (see :mod:`sim.drone.arming_report`)."""

    name: str
    """PX4's event name (``events::ID(name)``)."""
    message: str
    """Its message; ``{3}``... are the check's own arguments (1 and 2 are modes, component)."""
    group: str = "arming_check"
    """``arming_check`` or ``health``."""
    arguments: tuple[str, ...] = ()
    """Types of the check's own arguments (libevents base types or enum names)."""
    description: str = ""

    def spec(self) -> EventSpec:
        own = tuple((f"arg{i + 3}", t) for i, t in enumerate(self.arguments))
        return EventSpec(
            self.name,
            self.message,
            (*px4_events.CHECK_ARGUMENTS, *own),
            group=self.group,
            description=self.description,
        )


SIM_CHECKS: dict[str, CheckSpec] = {
    c.name: c
    for c in (
        CheckSpec(
            "check_modes_global_pos",
            "Navigation error: No valid global position estimate",
            description="The available positioning data is not sufficient to execute the "
            "selected mode.",
        ),
        CheckSpec(
            "check_modes_local_pos",
            "Navigation error: No valid position estimate",
            description="The available positioning data is not sufficient to execute the "
            "selected mode.",
        ),
        CheckSpec("check_modes_local_alt", "Navigation error: No valid altitude estimate"),
        CheckSpec(
            "check_modes_attitude",
            "No valid attitude estimate",
            description="Wait until the estimator initialized",
        ),
        CheckSpec("check_modes_home_position", "Home position not set"),
        CheckSpec(
            "check_modes_mission",
            "No valid mission available",
            description='Upload a mission first.\n<profile name="dev">This check can be '
            "configured via <param>COM_ARM_MIS_REQ</param>.</profile>",
        ),
        CheckSpec(
            "check_modes_manual_control",
            "No manual control input",
            description="Connect and enable stick input or use autonomous mode.",
        ),
        CheckSpec("check_modes_offboard_signal", "No offboard signal"),
        CheckSpec("check_modes_cannot_takeoff", "Mode not suitable for arming"),
        CheckSpec("check_system_no_home_pos", "Home position required"),
        CheckSpec("check_estimator_missing_data", "Waiting for estimator to initialize"),
        CheckSpec("check_estimator_gps_num_sats_too_low", "Not enough GPS Satellites"),
        CheckSpec("check_battery_low", "Low battery"),
        CheckSpec("check_battery_critical", "Critical battery"),
        CheckSpec("check_battery_emergency", "Emergency battery level"),
        CheckSpec("check_gf_no_home", "Geofence RTL requires valid home"),
        CheckSpec(
            "check_gf_violation_custom_gf", "Geofence violation: approaching or outside geofence"
        ),
        CheckSpec("check_rc_dl_no_dllink", "No connection to the ground control station"),
        CheckSpec("check_battery_missing", "Battery {3} missing", "health", ("uint8_t",)),
    )
}
"""The checks a sim vehicle can report, by event name."""


ARM_DISARM_REASONS: dict[int, tuple[str, str]] = {
    0: ("transition_to_standby", "Transition to standby"),
    1: ("stick_gesture", "Stick gesture"),
    2: ("rc_switch", "RC switch"),
    3: ("command_internal", "internal command"),
    4: ("command_external", "external command"),
    5: ("mission_start", "mission start"),
    6: ("auto_disarm_land", "landing"),
    7: ("auto_disarm_preflight", "auto preflight disarming"),
    8: ("kill_switch", "kill switch"),
    9: ("lockdown", "lockdown"),
    10: ("failure_detector", "failure detector"),
    11: ("shutdown", "shutdown request"),
    12: ("unit_test", "unit tests"),
    13: ("rc_button", "RC (button)"),
    14: ("failsafe", "failsafe"),
}
"""PX4's ``arm_disarm_reason_t`` (value -> name, description): why it armed or disarmed."""

REASON_ENUM = "px4::arm_disarm_reason_t"
_REASON = (("arg0", REASON_ENUM),)

FLIGHT_EVENTS: tuple[EventSpec, ...] = (
    EventSpec("commander_armed_by", "Armed by {1}", _REASON),
    EventSpec("commander_disarmed_by", "Disarmed by {1}", _REASON),
    EventSpec(
        "commander_arm_denied_resolve_failures",
        "Arming denied: Resolve system health failures first",
    ),
    EventSpec("commander_disarm_denied_not_landed", "Disarming denied: not landed"),
    EventSpec(
        "commander_mission_start_denied_no_mission", "Mission start denied! No valid mission"
    ),
    EventSpec("commander_takeoff_detected", "Takeoff detected"),
    EventSpec("commander_landing_detected", "Landing detected"),
    EventSpec("mission_execute", "Executing Mission"),
    EventSpec("mission_climb_before_start", "Climb to {1:.1m_v} above home", (("arg0", "float"),)),
    EventSpec("mission_finished", "Mission finished, landed"),
    EventSpec("mission_finished_loiter", "Mission finished, loitering"),
)
"""PX4's commander and navigator events of a flight, with PX4's names, messages and arguments
(read from a PX4 build's ``all_events.json``, see ``docs/protocols/mavlink.md``)."""

SIM_EVENTS: tuple[EventSpec, ...] = (
    *(t.spec() for t in px4_events.KNOWN_EVENTS.values()),
    *px4_events.ARMING_FALLBACK_EVENTS,
    *(c.spec() for c in SIM_CHECKS.values()),
    *FLIGHT_EVENTS,
)
"""Every event a sim vehicle can emit, as written into its ``all_events.json``."""


def events_json() -> dict[str, Any]:
    """The sim's ``all_events.json`` document."""
    return events_document(
        px4_events.PX4_EVENT_COMPONENT,
        NAMESPACE,
        SIM_EVENTS,
        (
            *px4_events.ARMING_FALLBACK_ENUMS,
            EnumSpec(
                "arm_disarm_reason_t",
                "uint8_t",
                ARM_DISARM_REASONS,
                description="Reason for arming/disarming",
            ),
        ),
        (px4_events.HEALTH_AND_ARMING_CHECK_PROTOCOL,),
    )


@dataclass(frozen=True, slots=True)
class MetadataFiles:
    """The files a sim vehicle serves, and the CRC it announces."""

    files: dict[str, bytes]
    """FTP path -> content (xz)."""
    general_crc: int
    """MAVLink CRC32 of the uncompressed general file (COMPONENT_METADATA.file_crc)."""
    events_crc: int


def _xz(doc: dict[str, Any]) -> tuple[bytes, int]:
    raw = json.dumps(doc, sort_keys=True).encode()
    return lzma.compress(raw), component_info.crc32(raw)


@functools.cache
def files() -> MetadataFiles:
    """Build (once) the general and events files, as PX4's build does."""
    events, events_crc = _xz(events_json())
    general_doc = component_info.general_document(
        [MetadataEntry(COMP_METADATA_TYPE_EVENTS, f"mftp://{EVENTS_PATH}", events_crc)]
    )
    general, general_crc = _xz(general_doc)
    return MetadataFiles({GENERAL_PATH: general, EVENTS_PATH: events}, general_crc, events_crc)


def answer(msg_id: int, time_boot_ms: int) -> Message:
    """COMPONENT_METADATA or COMPONENT_INFORMATION pointing at the general file."""
    f = files()
    uri = f"mftp://{GENERAL_PATH}"
    if msg_id == MSG_ID_COMPONENT_METADATA:
        return component_info.ComponentMetadataMessage(time_boot_ms, f.general_crc, uri)
    if msg_id == MSG_ID_COMPONENT_INFORMATION:
        return component_info.ComponentInformationMessage(time_boot_ms, f.general_crc, 0, uri, "")
    raise ValueError(f"message {msg_id} is not a component-metadata message")


ANSWERED = frozenset({MSG_ID_COMPONENT_METADATA, MSG_ID_COMPONENT_INFORMATION})
"""Message ids :func:`answer` builds (for MAV_CMD_REQUEST_MESSAGE)."""
