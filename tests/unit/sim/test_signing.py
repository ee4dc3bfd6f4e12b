"""MAVLink 2 signing: with a key, unsigned or wrongly signed commands are dropped."""

from __future__ import annotations

import os

from pymavlink.dialects.v20 import common as mavlink

from fleet.clock import AcceleratedClock
from sim.runner import SimFleet
from tests.support import eventually, free_udp_ports
from tests.unit.sim.gcs import Gcs

KEY = os.urandom(32)


async def test_unsigned_commands_are_rejected_signed_ones_answered() -> None:
    port = free_udp_ports(1)
    async with (
        Gcs(port, signing_key=KEY) as gcs,
        SimFleet(
            1, clock=AcceleratedClock(20), first_port=port, signing_key=KEY, ready_delay=0.5
        ) as fleet,
    ):
        v = fleet[0]
        hb = await gcs.wait_for("HEARTBEAT")
        assert hb.get_signed()
        # unsigned: same GCS without signing
        gcs.mav.signing.sign_outgoing = False
        since = gcs.mark()
        gcs.heartbeat()
        gcs.send(
            gcs.mav.command_long_encode(
                1,
                1,
                mavlink.MAV_CMD_REQUEST_MESSAGE,
                0,
                mavlink.MAVLINK_MSG_ID_AUTOPILOT_VERSION,
                0,
                0,
                0,
                0,
                0,
                0,
            )
        )
        await eventually(lambda: v.rejected_unsigned >= 2, 5)
        await gcs.wait_for("HEARTBEAT", since=gcs.mark())
        assert not [
            m for m in gcs.messages[since:] if m.get_type() in ("COMMAND_ACK", "AUTOPILOT_VERSION")
        ]
        assert v.ap.last_gcs_heartbeat is None  # an unsigned heartbeat does not count either
        # wrong key
        wrong = Gcs(0, signing_key=os.urandom(32))
        wrong.mav.file = gcs._sink
        gcs.send(
            wrong.mav.command_long_encode(
                1, 1, mavlink.MAV_CMD_REQUEST_MESSAGE, 0, 148, 0, 0, 0, 0, 0, 0
            ),
            mav=wrong.mav,
        )
        await eventually(lambda: v.rejected_unsigned >= 3, 5)
        # signed
        gcs.mav.signing.sign_outgoing = True
        ack = await gcs.command(
            mavlink.MAV_CMD_REQUEST_MESSAGE, mavlink.MAVLINK_MSG_ID_AUTOPILOT_VERSION
        )
        assert ack.result == mavlink.MAV_RESULT_ACCEPTED and ack.get_signed()
