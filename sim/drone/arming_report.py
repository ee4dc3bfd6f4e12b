"""PX4's health-and-arming-checks report, emitted by a sim vehicle as PX4's commander sends it.

PX4 reports the state of its checks as a sequence of events (``Report::report`` in
``HealthAndArmingChecks/Common.cpp``): ``commander_arming_check_summary`` (chunk 0, health
components with arming errors and warnings, mode groups that can arm and can run), one event per
failing check, then ``commander_health_summary`` (chunk 0, components present, in error, in
warning). :func:`emit_report` sends exactly that through a vehicle's
:class:`sim.drone.events.EventLog`:

* a check's event carries the mode groups it affects (0, "no mode", is sent as all modes, as
  PX4's ``reportedModes`` does, so optional checks still show), the index of its health
  component, then its own arguments (types from :data:`sim.drone.metadata.SIM_CHECKS`, where
  its message is declared: every check reported must be there, so the sim's metadata describes
  it);
* each check's log level is both its external and internal level (PX4's ``LogLevels(Log)``);
  the summaries go out at the protocol level;
* the arming summary's error/warning components are those of the checks at error (or worse)
  and warning level, unless given.

Which checks fail, and the can-arm/can-run masks, are the autopilot's business (it calls this
when its readiness changes, and for MAV_CMD_RUN_PREARM_CHECKS).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from firmware_bridges.mavlink.wire import px4_events
from firmware_bridges.mavlink.wire.event_metadata import BASE_TYPES, STRUCT_CODE_TYPES
from sim.drone.events import LOG_ERROR, LOG_WARNING, Event, EventLog
from sim.drone.metadata import SIM_CHECKS

ALL_MODES = 0xFFFFFFFF
"""PX4's ``NavModes::All``."""
LOG_PROTOCOL = px4_events.LOG_LEVEL_PROTOCOL
"""``events::Log::Protocol``: the summaries' level."""
_CODES = {t: c for c, t in STRUCT_CODE_TYPES.items()}
_COMPONENT_INDEX = {
    name: bit.bit_length() - 1 for bit, (name, _) in px4_events.HEALTH_COMPONENTS.items()
}


def mode_bits(*names: str) -> int:
    """The ``navigation_mode_group_t`` mask of group names (``"mission"``, ``"takeoff"``...)."""
    by_name = {name: bit for bit, (name, _) in px4_events.NAVIGATION_MODE_GROUPS.items()}
    mask = 0
    for n in names:
        mask |= by_name[n]
    return mask


def component_bits(*names: str) -> int:
    """The ``health_component_t`` mask of component names (``"gps"``, ``"battery"``...)."""
    mask = 0
    for n in names:
        mask |= 1 << _COMPONENT_INDEX[n]
    return mask


@dataclass(frozen=True, slots=True)
class CheckFailure:
    """One failing check to report."""

    check: str
    """Event name, declared in :data:`sim.drone.metadata.SIM_CHECKS` (with its message)."""
    modes: int = 0
    """Mode groups it affects (``mode_bits(...)``); 0 is reported as all modes."""
    component: str = "system"
    """Health component it concerns (``health_component_t`` entry name; ``none`` for none)."""
    level: int = LOG_ERROR
    """External log level (``events::Log``: 0 emergency .. 3 error, 4 warning, 6 info)."""
    args: tuple[float, ...] = ()
    """The check's own arguments, in the types the table declares."""


def _check_arguments(failure: CheckFailure) -> tuple[str, tuple[float, ...]]:
    spec = SIM_CHECKS.get(failure.check)
    if spec is None:
        raise KeyError(f"check {failure.check!r} is not in sim.drone.metadata.SIM_CHECKS")
    if len(failure.args) != len(spec.arguments):
        raise ValueError(
            f"check {failure.check} takes {len(spec.arguments)} arguments, got {failure.args!r}"
        )
    codes = ""
    for t in spec.arguments:
        if t not in BASE_TYPES:
            raise ValueError(f"check {failure.check}: enum argument {t} not supported")
        codes += _CODES[t]
    if failure.component not in _COMPONENT_INDEX:
        raise KeyError(f"unknown health component {failure.component!r}")
    modes = failure.modes or ALL_MODES
    return "IB" + codes, (modes, _COMPONENT_INDEX[failure.component], *failure.args)


def emit_report(
    log: EventLog,
    failures: Sequence[CheckFailure],
    *,
    can_arm: int,
    can_run: int,
    present: int = 0,
    health_error: int = 0,
    health_warning: int = 0,
    arming_error: int | None = None,
    arming_warning: int | None = None,
    time_boot_ms: int = 0,
) -> list[Event]:
    """Queue one complete report on ``log``: summary, one event per failure, health summary.

    ``can_arm``/``can_run`` are ``navigation_mode_group_t`` masks (:func:`mode_bits`);
    ``present``/``health_error``/``health_warning`` and ``arming_error``/``arming_warning``
    are ``health_component_t`` masks (:func:`component_bits`). Returns the queued events.
    """
    prepared = [(f, *_check_arguments(f)) for f in failures]
    if arming_error is None:
        arming_error = 0
        for f, _fmt, values in prepared:
            if f.level <= LOG_ERROR:
                arming_error |= 1 << int(values[1])  # the health component index
    if arming_warning is None:
        arming_warning = 0
        for f, _fmt, values in prepared:
            if f.level == LOG_WARNING:
                arming_warning |= 1 << int(values[1])
    out = [
        log.emit(
            px4_events.ARMING_SUMMARY_EVENT,
            "BIIII",
            (0, arming_error, arming_warning, can_arm, can_run),
            time_boot_ms=time_boot_ms,
            level=LOG_PROTOCOL,
            internal=LOG_PROTOCOL,
        )
    ]
    for f, fmt, values in prepared:
        out.append(
            log.emit(
                f.check, fmt, values, time_boot_ms=time_boot_ms, level=f.level, internal=f.level
            )
        )
    out.append(
        log.emit(
            px4_events.HEALTH_SUMMARY_EVENT,
            "BIII",
            (0, present, health_error, health_warning),
            time_boot_ms=time_boot_ms,
            level=LOG_PROTOCOL,
            internal=LOG_PROTOCOL,
        )
    )
    return out
