"""Following a vehicle through a mission: the one loop every mission kind's run uses.

A run that has started its vehicle follows it until the mission ends. What that takes is the
same for a drone sortie, a broadcast flight and a van trip, and lives here once
(:class:`Follower`):

* a **deadline** in world time: past it, the run's ``overdue`` hook decides (recall, strand);
* wake on every change of the vehicle's live status (``registry.wait_for(version != seen)``),
  and at least every ``poll_s`` (with ``tick_when_quiet`` the hook sees the unchanged status
  then, for runs that must look at other things periodically);
* a vehicle **not (re)discovered yet** (after a service restart the registry is empty until
  its link hears it): wait and look again; with ``absent_grace_s`` the run's ``gone`` hook ends
  the mission after that long;
* the **link lost and regained**: noted once each on the mission's record; with
  ``lost_grace_s`` (a number, or a function asked each time: a grace that depends on what the
  vehicle last said) the ``gone`` hook ends the mission after that long, and with
  ``skip_while_lost`` the status of a vehicle whose link is lost is not judged (a van's last
  state is stale; a drone's telemetry stops anyway but PX4 flies on); with
  ``hold_deadline_while_lost`` the deadline waits while the vehicle is unheard;
* an operator's **hold** (:meth:`Follower.hold` / :meth:`Follower.release`: a drone held in
  PX4 Hold, a van paused): the deadline does not run while the vehicle is held (it moves on by
  the time held);
* a **stop request** (the run was cancelled, or its vehicle taken out of service): the
  ``stop`` hook runs once (send the drone home, cancel the van's order), then following goes on
  until the vehicle says it is done;
* every other update goes to the ``update`` hook, which returns True when the mission is over.

The hooks are the run's own: the follower knows nothing of any mission kind.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fleet.clock import Clock
from fleet.errors import NotFound
from fleet.registry import VehicleEntry, VehicleRegistry
from fleet.vehicle import LinkState

Update = Callable[[VehicleEntry], Awaitable[bool]]
"""Judge one status of the vehicle; True when the mission is over."""
Hook = Callable[[], Awaitable[None]]
Gone = Callable[[str], Awaitable[None]]
"""End the mission because the vehicle is gone (argument: why)."""
Note = Callable[[str], Awaitable[None]]
"""Record a note on the mission (link lost, link regained)."""

DEFAULT_POLL_S = 5.0
"""World seconds between two looks at a vehicle whose status does not change."""
ABSENT_POLL_S = 1.0
"""World seconds between two looks for a vehicle the links have not (re)discovered."""


@dataclass(frozen=True, slots=True)
class Notes:
    """What the record says when the link goes and comes back."""

    lost: str = "link lost; the vehicle continues its mission"
    """Noted when the link is lost (``{link}`` is replaced by the link state)."""
    regained: str = "link regained"


class Follower:
    """Follows one vehicle until a hook says the mission is over (see the module docs)."""

    def __init__(
        self,
        registry: VehicleRegistry,
        clock: Clock,
        vehicle_id: str,
        *,
        deadline: float,
        poll_s: float = DEFAULT_POLL_S,
        absent_poll_s: float = ABSENT_POLL_S,
        tick_when_quiet: bool = False,
        lost_grace_s: float | Callable[[], float] | None = None,
        absent_grace_s: float | None = None,
        skip_while_lost: bool = False,
        hold_deadline_while_lost: bool = False,
        notes: Notes = Notes(),
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.vehicle_id = vehicle_id
        self.deadline = deadline
        """World time (``clock.time()``) the mission must be over by."""
        self.poll_s = poll_s
        self.absent_poll_s = absent_poll_s
        self.tick_when_quiet = tick_when_quiet
        self.lost_grace_s = lost_grace_s
        self.absent_grace_s = absent_grace_s
        self.skip_while_lost = skip_while_lost
        self.hold_deadline_while_lost = hold_deadline_while_lost
        """The deadline does not end a mission whose vehicle is unheard: only the lost grace
        does (a drone that may still be flying its route is not given up at the deadline)."""
        self.notes = notes
        self.stop_sent = False
        """Whether the ``stop`` hook has run."""
        self.held_since: float | None = None
        """World time (``clock.time()``) an operator held the vehicle, while held."""

    def hold(self) -> None:
        """The vehicle is held by an operator: its deadline stops running."""
        if self.held_since is None:
            self.held_since = self.clock.time()

    def release(self) -> None:
        """The hold ended: the deadline moves on by the time held."""
        if self.held_since is not None:
            self.deadline += max(0.0, self.clock.time() - self.held_since)
            self.held_since = None

    async def follow(
        self,
        update: Update,
        *,
        overdue: Hook,
        note: Note,
        stop_requested: Callable[[], Awaitable[bool]] | None = None,
        stop: Hook | None = None,
        gone: Gone | None = None,
    ) -> None:
        """Follow until ``update`` returns True, ``overdue`` or ``gone`` has ended the mission.

        ``overdue()`` runs when the deadline passes; ``gone(why)`` when the vehicle stayed
        unheard longer than a grace; ``stop()`` once, when ``stop_requested()`` turns true.
        """
        clock = self.clock
        seen = -1
        lost_since: float | None = None
        while True:
            remaining = self.deadline - clock.time()
            if remaining <= 0:
                if self.held_since is None and not (
                    self.hold_deadline_while_lost and lost_since is not None
                ):
                    await overdue()
                    return
                remaining = self.poll_s
            last = seen

            def changed(e: VehicleEntry, last: int = last) -> bool:
                return e.version != last

            try:
                entry = await self.registry.wait_for(
                    self.vehicle_id,
                    changed,
                    within=min(remaining, self.poll_s),
                    clock=clock,
                )
                seen = entry.version
            except TimeoutError:
                found = self.registry.find(self.vehicle_id)
                if not self.tick_when_quiet or found is None:
                    continue
                entry = found
            except NotFound:  # not (re)discovered yet, after a restart
                await clock.sleep(self.absent_poll_s)
                if self.absent_grace_s is not None and gone is not None:
                    lost_since = lost_since if lost_since is not None else clock.monotonic()
                    if clock.monotonic() - lost_since > self.absent_grace_s:
                        await gone(f"not heard for {self.absent_grace_s:.0f} s")
                        return
                continue
            link = entry.status.link
            if link != LinkState.ONLINE:
                if lost_since is None:
                    lost_since = clock.monotonic()
                    await note(self.notes.lost.format(link=link))
                silent = clock.monotonic() - lost_since
                grace = self.lost_grace_s() if callable(self.lost_grace_s) else self.lost_grace_s
                if grace is not None and gone is not None and silent > grace:
                    await gone(f"link {link} for {silent:.0f} s (more than {grace:.0f} s)")
                    return
                if self.skip_while_lost:
                    continue
            elif lost_since is not None:
                lost_since = None
                await note(self.notes.regained)
            if (
                stop is not None
                and stop_requested is not None
                and not self.stop_sent
                and await stop_requested()
            ):
                self.stop_sent = True
                await stop()
            if await update(entry):
                return
