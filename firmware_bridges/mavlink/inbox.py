"""A vehicle's protocol inbox: answers addressed to us, handed to whoever waits for them.

The command, mission, parameter, FTP and metadata clients each open a :class:`Listener` for the
message ids they expect (COMMAND_ACK, MISSION_REQUEST_INT, PARAM_VALUE...), optionally with a
predicate, while they wait; the session offers every such message it receives to the
:class:`Inbox`, and when the link is lost every open listener receives
:attr:`fleet.vehicle.LinkState.LOST` so that no client waits for an answer that cannot come.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from firmware_bridges.mavlink.wire.messages import Message
from fleet.clock import Clock
from fleet.vehicle import LinkState


class Listener:
    """A queue of protocol messages of some ids that pass a predicate; use as a context manager."""

    def __init__(
        self,
        inbox: Inbox,
        msgids: Iterable[int],
        predicate: Callable[[Message], bool] | None = None,
    ) -> None:
        self._inbox = inbox
        self.msgids = tuple(msgids)
        self.predicate = predicate
        self.queue: asyncio.Queue[Message] = asyncio.Queue()

    def offer(self, msg: Message) -> None:
        if self.predicate is None or self.predicate(msg):
            self.queue.put_nowait(msg)

    async def get(self, within: float) -> Message:
        """Next message (or ``LinkState.LOST``), waiting at most ``within`` world seconds
        (TimeoutError after)."""
        if not self.queue.empty():
            return self.queue.get_nowait()
        return await self._inbox.clock.wait_for(self.queue.get(), within)

    def __enter__(self) -> Listener:
        for msgid in self.msgids:
            self._inbox.listeners.setdefault(msgid, []).append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for msgid in self.msgids:
            lst = self._inbox.listeners.get(msgid)
            if lst and self in lst:
                lst.remove(self)


class Inbox:
    """The open listeners of one vehicle, by message id."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.listeners: dict[int, list[Listener]] = {}

    def listen(
        self, msgids: Iterable[int], predicate: Callable[[Message], bool] | None = None
    ) -> Listener:
        return Listener(self, msgids, predicate)

    def offer(self, msg: Message) -> None:
        """Hand ``msg`` to every listener open for its id (and whose predicate takes it)."""
        listeners = self.listeners.get(msg.get_msgId())
        if listeners:
            for listener in tuple(listeners):
                listener.offer(msg)

    def link_lost(self) -> None:
        """Tell every open listener that the link is lost."""
        for listeners in self.listeners.values():
            for listener in listeners:
                listener.queue.put_nowait(LinkState.LOST)
