"""What a test tells a fake vehicle to do wrong, command by command: refuse with a reason, stay
silent until the command times out, or keep the command waiting (a slow upload, a van that takes
its time to confirm) until the test lets it through.

Each fake keeps one :class:`Faults`; its commands await :meth:`Faults.gate` and ask
:meth:`Faults.take` before they act, and raise what the real bridge raises for that failure.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    """How a command fails."""

    REFUSE = "refuse"
    """The vehicle answers with a refusal (its words in ``reason``)."""
    TIMEOUT = "timeout"
    """The vehicle never answers."""


@dataclass(slots=True)
class Fault:
    """A planned failure of one command."""

    kind: FaultKind
    reason: str
    times: int | None
    """How many calls still fail; None: every call until :meth:`Faults.clear`."""


class Faults:
    """Planned failures per command name (the port method's name, e.g. ``upload_mission``)."""

    def __init__(self) -> None:
        self._planned: dict[str, Fault] = {}
        self._held: dict[str, asyncio.Event] = {}
        self.waiting: dict[str, int] = {}
        """Calls of each command waiting at its gate now."""

    def hold(self, command: str) -> None:
        """Calls of ``command`` wait (before anything happens) until :meth:`let_through`."""
        self._held.setdefault(command, asyncio.Event())

    def let_through(self, command: str) -> None:
        event = self._held.pop(command, None)
        if event is not None:
            event.set()

    async def gate(self, command: str) -> None:
        """Wait while ``command`` is held."""
        event = self._held.get(command)
        if event is None:
            return
        self.waiting[command] = self.waiting.get(command, 0) + 1
        try:
            await event.wait()
        finally:
            self.waiting[command] -= 1

    def plan(self, command: str, kind: FaultKind, reason: str, times: int | None) -> None:
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None: until cleared)")
        self._planned[command] = Fault(kind, reason, times)

    def clear(self, command: str | None = None) -> None:
        """Let ``command`` (every command when None) succeed again."""
        if command is None:
            self._planned.clear()
        else:
            self._planned.pop(command, None)

    def take(self, command: str) -> Fault | None:
        """The failure the next call of ``command`` has, if any (and count it)."""
        fault = self._planned.get(command)
        if fault is None:
            return None
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                del self._planned[command]
        return fault


class FaultControls:
    """What a test makes a fake do wrong, the same for every fake: ``refuse``, ``time_out``,
    ``allow``, ``hold_back``/``let_through``/``waiting``. A fake sets :attr:`faults` and calls
    ``faults.take(command)`` and ``faults.gate(command)`` in its port methods."""

    faults: Faults

    def refuse(self, command: str, reason: str, *, times: int | None = None) -> None:
        """The next ``times`` calls of ``command`` (a port method name; every call when None)
        are refused with the vehicle's ``reason`` (for a van's ``send_trip``, the VDA 5050
        error type: ``orderError``, ...)."""
        self.faults.plan(command, FaultKind.REFUSE, reason, times)

    def time_out(self, command: str, *, times: int | None = None) -> None:
        """The next ``times`` calls of ``command`` get no answer (they raise the timeout)."""
        self.faults.plan(command, FaultKind.TIMEOUT, "no answer", times)

    def allow(self, command: str | None = None) -> None:
        """``command`` (every command when None) works again."""
        self.faults.clear(command)

    def hold_back(self, command: str) -> None:
        """Calls of ``command`` wait until :meth:`let_through` (a slow vehicle)."""
        self.faults.hold(command)

    def let_through(self, command: str) -> None:
        """Calls of ``command`` held back go on."""
        self.faults.let_through(command)

    def waiting(self, command: str) -> bool:
        """A call of ``command`` waits at its gate now."""
        return self.faults.waiting.get(command, 0) > 0
