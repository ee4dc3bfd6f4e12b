"""SimFleet: port modes, homes from a world, system ids, one loop for many vehicles."""

from __future__ import annotations

import pytest
from shapely.geometry import Polygon

from fleet.clock import AcceleratedClock, ManualClock
from fleet.geo import LatLon, LocalFrame
from fleet.world import Pad, World
from sim.drone.autopilot import Home
from sim.runner import PortMode, SimFleet, target_port
from tests.support import eventually, free_udp_ports
from tests.unit.sim.gcs import Gcs


def test_port_modes() -> None:
    assert [target_port(PortMode.SEQUENTIAL, 14540, i) for i in (0, 1, 12)] == [14540, 14541, 14552]
    assert [target_port("px4", 14540, i) for i in (0, 9, 10, 30)] == [14540, 14549, 14549, 14549]
    assert {target_port("shared", 14540, i) for i in range(50)} == {14540}


def _world() -> World:
    pads = tuple(
        Pad(f"pad-{i}", f"Pad {i}", LatLon(22.53 + i * 1e-4, 114.05), "wh-1", 15.0 + i)
        for i in range(2)
    )
    ring = ((22.52, 114.04), (22.52, 114.06), (22.54, 114.06), (22.54, 114.04))
    return World(
        name="test",
        frame=LocalFrame(22.53, 114.05),
        map_id="test",
        boundary=ring,
        area=Polygon([(-1000, -1000), (1000, -1000), (1000, 1000), (-1000, 1000)]),
        warehouses=(),
        pads=pads,
        communities=(),
    )


async def test_homes_from_world_pads_and_sequential_ports() -> None:
    first = free_udp_ports(3)
    gcss = [Gcs(first + i) for i in range(3)]
    for g in gcss:
        await g.__aenter__()
    try:
        async with SimFleet(
            3, clock=AcceleratedClock(10), world=_world(), first_port=first
        ) as fleet:
            assert [v.sysid for v in fleet.vehicles] == [1, 2, 3]
            for i, g in enumerate(gcss):
                hb = await g.wait_for("HEARTBEAT")
                assert hb.get_srcSystem() == i + 1  # vehicle i sends to first_port + i only
                assert {m.get_srcSystem() for m in g.messages} == {i + 1}
            homes = [v.config.home for v in fleet.vehicles]
            assert homes[0] == homes[2] != homes[1]  # vehicle i on pad i mod 2
            assert homes[1].alt == 16.0
            await eventually(lambda: fleet[1].ap.home is not None, 5)
            assert fleet[1].ap.home.alt == pytest.approx(16.0)
    finally:
        for g in gcss:
            await g.__aexit__()


async def test_manual_clock_drives_the_loop() -> None:
    clock = ManualClock()
    port = free_udp_ports(1)
    async with (
        Gcs(port) as gcs,
        SimFleet(
            2,
            clock=clock,
            first_port=port,
            port_mode="shared",
            homes=[Home(22.5, 114.0, 5.0), Home(22.5, 114.001, 5.0)],
        ) as fleet,
    ):
        assert fleet.period() == fleet.tick
        await clock.advance(1.0, step=0.02)
        await gcs.wait_for("HEARTBEAT", sysid=1)
        await gcs.wait_for("HEARTBEAT", sysid=2)
        before = fleet.ticks
        await clock.advance(3.0, step=0.02)
        assert fleet.ticks - before == pytest.approx(150, abs=2)
        assert fleet[0].ap.ready  # ready_delay 2 s of world time
        assert fleet.ticks * fleet.tick == pytest.approx(clock.monotonic(), abs=0.05)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="homes"):
        SimFleet(2, homes=[Home(0, 0, 0)])
    with pytest.raises(ValueError, match="32 bytes"):
        SimFleet(1, signing_key=b"short")
    # system ids are one byte and 255 is the ground station: 500 drones need several fleets
    with pytest.raises(ValueError, match=r"ids up to 500; MAVLink system ids are 1\.\.254"):
        SimFleet(500)
    with pytest.raises(ValueError, match="ids up to 255"):
        SimFleet(5, first_sysid=251)
    with pytest.raises(ValueError, match="system ids are 1"):
        SimFleet(1, first_sysid=0)
    assert len(SimFleet(4, first_sysid=251)) == 4
