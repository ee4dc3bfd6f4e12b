"""The mission state machine allows exactly the documented transitions."""

from __future__ import annotations

import pytest

from fleet.errors import Conflict
from missions.states import (
    MISSION_TERMINAL,
    MissionState,
    Priority,
    check_mission_transition,
    mission_transition_allowed,
)

FORWARD = [
    (MissionState.PLANNED, MissionState.AUTHORIZED),
    (MissionState.AUTHORIZED, MissionState.UNDERWAY),
    (MissionState.UNDERWAY, MissionState.COMPLETED),
]


@pytest.mark.parametrize(("src", "dst"), FORWARD)
def test_the_happy_path(src: MissionState, dst: MissionState) -> None:
    check_mission_transition(src, dst)


@pytest.mark.parametrize("terminal", sorted(MISSION_TERMINAL))
def test_terminal_states_are_final(terminal: MissionState) -> None:
    for dst in MissionState:
        assert not mission_transition_allowed(terminal, dst)


def test_no_skipping_or_going_back() -> None:
    with pytest.raises(Conflict, match="planned to completed"):
        check_mission_transition(MissionState.PLANNED, MissionState.COMPLETED)
    with pytest.raises(Conflict):
        check_mission_transition(MissionState.UNDERWAY, MissionState.PLANNED)
    with pytest.raises(Conflict):
        check_mission_transition(MissionState.PLANNED, MissionState.UNDERWAY)


@pytest.mark.parametrize(
    "active", [MissionState.PLANNED, MissionState.AUTHORIZED, MissionState.UNDERWAY]
)
def test_any_active_mission_can_stop(active: MissionState) -> None:
    for dst in (MissionState.FAILED, MissionState.CANCELLED, MissionState.INTERRUPTED):
        check_mission_transition(active, dst)


def test_priority_order() -> None:
    assert [p.rank for p in Priority] == [0, 1, 2]
    assert Priority.URGENT_MEDICAL.rank < Priority.VULNERABLE.rank < Priority.STANDARD.rank
