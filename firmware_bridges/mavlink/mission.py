"""The MAVLink mission protocol, ground-station side: upload, download and clear of the mission,
fence and rally plans.

Upload (we are the sender; the vehicle drives the transfer):

1. send MISSION_COUNT(count, mission_type);
2. answer every MISSION_REQUEST_INT *and* legacy MISSION_REQUEST for that mission type with
   MISSION_ITEM_INT of the requested ``seq`` (duplicates and out-of-order requests are answered
   as asked: the vehicle re-requests what it did not get);
3. finish on MISSION_ACK: ACCEPTED after the last item was requested is success; any other
   result (NO_SPACE, INVALID_SEQUENCE, UNSUPPORTED_FRAME, ...) fails the upload with that name.

If the vehicle goes quiet for ``mission_timeout_s`` we resend what we sent last (the count, or
the last requested item), at most ``mission_retries`` times in a row; then we send
MISSION_ACK(OPERATION_CANCELLED) so the vehicle leaves its transfer state, and fail.

Download: MISSION_REQUEST_LIST -> MISSION_COUNT, then MISSION_REQUEST_INT for each seq ->
MISSION_ITEM_INT (legacy MISSION_ITEM accepted), then MISSION_ACK(ACCEPTED), also after a count
of 0 (PX4 leaves its send state only on that ack); every step is retried on timeout.
Clear: MISSION_CLEAR_ALL -> MISSION_ACK. Every message carries the
mission type, and answers of another type are ignored. One transfer per vehicle at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink import translate
from firmware_bridges.mavlink.inbox import Listener
from firmware_bridges.mavlink.session import VehicleSession
from firmware_bridges.mavlink.wire.messages import Message
from firmware_bridges.mavlink.wire.mission_items import MissionItem, MissionType
from fleet.errors import LinkLost, MissionUploadError
from fleet.vehicle import LinkState

_REQUESTS = (mavlink.MAVLINK_MSG_ID_MISSION_REQUEST_INT, mavlink.MAVLINK_MSG_ID_MISSION_REQUEST)
_ACK = mavlink.MAVLINK_MSG_ID_MISSION_ACK
_COUNT = mavlink.MAVLINK_MSG_ID_MISSION_COUNT
_ITEMS = (mavlink.MAVLINK_MSG_ID_MISSION_ITEM_INT, mavlink.MAVLINK_MSG_ID_MISSION_ITEM)


class MissionClient:
    """Mission-protocol transfers with one vehicle."""

    def __init__(self, session: VehicleSession) -> None:
        self.session = session
        self._lock = asyncio.Lock()

    def _error(self, message: str, mission_type: MissionType, **fields: Any) -> MissionUploadError:
        return MissionUploadError(
            f"{self.session.vehicle_id}: {message}",
            vehicle_id=self.session.vehicle_id,
            mission_type=mission_type.name.lower(),
            **fields,
        )

    def _listen(self, msgids: tuple[int, ...], mission_type: MissionType) -> Listener:
        if mission_type == MissionType.ALL:
            return self.session.listen(msgids)  # vehicles answer a clear-all with any type
        return self.session.listen(msgids, lambda m: m.mission_type == mission_type)

    async def _next(self, listener: Listener, mission_type: MissionType) -> Message:
        msg = await listener.get(self.session.port.options.mission_timeout_s)
        if msg is LinkState.LOST:
            raise LinkLost(
                f"{self.session.vehicle_id} link lost during the {mission_type.name.lower()} "
                "transfer",
                vehicle_id=self.session.vehicle_id,
            )
        return msg

    def _check_link(self, mission_type: MissionType) -> None:
        if self.session.status.link == LinkState.LOST:
            raise LinkLost(
                f"{self.session.vehicle_id} link is lost; {mission_type.name.lower()} transfer "
                "not started",
                vehicle_id=self.session.vehicle_id,
            )

    def _send_item(self, items: list[MissionItem], seq: int, mission_type: MissionType) -> None:
        s = self.session
        s.send(items[seq].int_message((s.system_id, s.component_id), seq, mission_type))

    def _cancel(self, mission_type: MissionType) -> None:
        s = self.session
        s.send(
            mavlink.MAVLink_mission_ack_message(
                s.system_id,
                s.component_id,
                mavlink.MAV_MISSION_OPERATION_CANCELLED,
                int(mission_type),
            )
        )

    async def upload(self, mission_type: MissionType, items: list[MissionItem]) -> None:
        """Upload ``items`` as the vehicle's plan of ``mission_type``; raises
        ``MissionUploadError`` (or ``LinkLost``) on failure."""
        s = self.session
        retries = s.port.options.mission_retries
        count = len(items)
        self._check_link(mission_type)
        async with self._lock:
            with self._listen((*_REQUESTS, _ACK), mission_type) as inbox:
                s.send(
                    mavlink.MAVLink_mission_count_message(
                        s.system_id, s.component_id, count, int(mission_type)
                    )
                )
                last_sent: int | None = None  # None: the count
                highest = -1
                silent = 0
                while True:
                    try:
                        msg = await self._next(inbox, mission_type)
                    except TimeoutError:
                        if silent >= retries:
                            self._cancel(mission_type)
                            what = "the count" if last_sent is None else f"item {last_sent}"
                            raise self._error(
                                f"{mission_type.name.lower()} upload timed out after {what} "
                                f"({retries + 1} attempts)",
                                mission_type,
                                result="TIMEOUT",
                                items_sent=highest + 1,
                                count=count,
                            ) from None
                        silent += 1
                        if last_sent is None:
                            s.send(
                                mavlink.MAVLink_mission_count_message(
                                    s.system_id, s.component_id, count, int(mission_type)
                                )
                            )
                        else:
                            self._send_item(items, last_sent, mission_type)
                        continue
                    if msg.get_msgId() == _ACK:
                        if msg.type == mavlink.MAV_MISSION_ACCEPTED:
                            if highest == count - 1:
                                return
                            raise self._error(
                                f"vehicle accepted the {mission_type.name.lower()} after "
                                f"{highest + 1} of {count} items",
                                mission_type,
                                result="ACCEPTED_EARLY",
                                count=count,
                            )
                        result = translate.mission_result_name(msg.type)
                        raise self._error(
                            f"vehicle refused the {mission_type.name.lower()}: {result}",
                            mission_type,
                            result=result,
                            items_sent=highest + 1,
                            count=count,
                        )
                    seq = msg.seq
                    if not 0 <= seq < count:
                        self._cancel(mission_type)
                        raise self._error(
                            f"vehicle requested item {seq} of a {count}-item upload",
                            mission_type,
                            result="INVALID_SEQUENCE",
                        )
                    self._send_item(items, seq, mission_type)
                    last_sent = seq
                    if seq > highest:
                        highest = seq
                        silent = 0

    async def _request(
        self,
        inbox: Listener,
        mission_type: MissionType,
        send: Callable[[], None],
        accept: Callable[[Message], bool],
        what: str,
    ) -> Message:
        retries = self.session.port.options.mission_retries
        send()
        for attempt in range(retries + 1):
            while True:
                try:
                    msg = await self._next(inbox, mission_type)
                except TimeoutError:
                    break
                if accept(msg):
                    return msg
            if attempt < retries:
                send()
        self._cancel(mission_type)
        raise self._error(
            f"{mission_type.name.lower()} download timed out waiting for {what}",
            mission_type,
            result="TIMEOUT",
        )

    async def download(self, mission_type: MissionType) -> list[MissionItem]:
        """The vehicle's plan of ``mission_type`` as mission items."""
        s = self.session
        self._check_link(mission_type)
        async with self._lock:
            with self._listen((_COUNT, *_ITEMS, _ACK), mission_type) as inbox:

                def send_list() -> None:
                    s.send(
                        mavlink.MAVLink_mission_request_list_message(
                            s.system_id, s.component_id, int(mission_type)
                        )
                    )

                def is_count(m: Message) -> bool:
                    if m.get_msgId() == _ACK and m.type != mavlink.MAV_MISSION_ACCEPTED:
                        raise self._error(
                            "vehicle refused the download: "
                            + translate.mission_result_name(m.type),
                            mission_type,
                            result=translate.mission_result_name(m.type),
                        )
                    return bool(m.get_msgId() == _COUNT)

                count_msg = await self._request(inbox, mission_type, send_list, is_count, "count")
                count = count_msg.count
                items: list[MissionItem] = []
                for seq in range(count):

                    def send_req(seq: int = seq) -> None:
                        s.send(
                            mavlink.MAVLink_mission_request_int_message(
                                s.system_id, s.component_id, seq, int(mission_type)
                            )
                        )

                    def is_item(m: Message, seq: int = seq) -> bool:
                        return m.get_msgId() in _ITEMS and m.seq == seq

                    msg = await self._request(inbox, mission_type, send_req, is_item, f"item {seq}")
                    items.append(MissionItem.from_message(msg))
                # also for an empty plan: PX4 stays in its send state (answering a following
                # MISSION_COUNT with MAV_MISSION_ERROR) until this ack or its 5 s timeout
                s.send(
                    mavlink.MAVLink_mission_ack_message(
                        s.system_id, s.component_id, mavlink.MAV_MISSION_ACCEPTED, int(mission_type)
                    )
                )
                return items

    async def clear(self, mission_type: MissionType) -> None:
        """Delete the vehicle's plan of ``mission_type`` (ALL: every type)."""
        s = self.session
        self._check_link(mission_type)
        async with self._lock:
            with self._listen((_ACK,), mission_type) as inbox:

                def send_clear() -> None:
                    s.send(
                        mavlink.MAVLink_mission_clear_all_message(
                            s.system_id, s.component_id, int(mission_type)
                        )
                    )

                ack = await self._request(inbox, mission_type, send_clear, lambda m: True, "ack")
                if ack.type != mavlink.MAV_MISSION_ACCEPTED:
                    result = translate.mission_result_name(ack.type)
                    raise self._error(
                        f"vehicle refused to clear the {mission_type.name.lower()}: {result}",
                        mission_type,
                        result=result,
                    )
