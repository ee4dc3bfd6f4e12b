"""MAVLink 2 signing: signed vehicles are served, unsigned or wrongly signed frames rejected."""

from __future__ import annotations

import asyncio

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.control import MavlinkDrone
from tests.support import eventually
from tests.unit.mavlink.conftest import Env, OpenLink
from tests.unit.mavlink.peer import Peer

KEY = bytes(range(32))


async def test_signed_link(env: Env, open_link: OpenLink) -> None:
    async with open_link(signing_key=KEY.hex()) as link:
        signed = await Peer.open(link.local_address, sysid=1, signing_key=KEY)
        unsigned = await Peer.open(link.local_address, sysid=2)
        wrong = await Peer.open(link.local_address, sysid=3, signing_key=bytes(32))
        try:

            async def seen() -> bool:
                for p in (signed, unsigned, wrong):
                    p.heartbeat()
                await asyncio.sleep(0.02)
                return "drone-1" in env.registry

            await eventually(seen)

            async def rejected() -> bool:
                await seen()
                return link.stats.bad_signature >= 4

            await eventually(rejected)
            assert "drone-2" not in env.registry and "drone-3" not in env.registry
            # what we send is signed with the key and verifies at the vehicle
            hb = await signed.expect("HEARTBEAT")
            assert hb.get_signed()
            drone = env.registry.get("drone-1").control
            assert isinstance(drone, MavlinkDrone)
            signed.beat()
            signed.auto_ack()
            await drone.arm()
            # an unsigned ack from the right system id is not believed
            unsigned.send(
                mavlink.MAVLink_sys_status_message(0, 0, 0, 0, 12000, -1, 5, 0, 0, 0, 0, 0, 0),
                srcsys=1,
            )
            before = link.stats.bad_signature
            await eventually(lambda: link.stats.bad_signature > before)
            assert drone.status.battery_fraction != 0.05
        finally:
            for p in (signed, unsigned, wrong):
                p.close()
