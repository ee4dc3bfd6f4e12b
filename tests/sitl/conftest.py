"""Fixtures of the SITL suite (real PX4, opt-in).

``px4_build`` is the PX4 build named by ``STREETFLEET_PX4_BUILD``: without it every SITL test is
skipped with the reason, also under ``CI=true`` (SITL is opt-in: CI machines have no PX4 build);
set but unusable, the tests fail and say why. ``px4`` launches PX4 instances for one test
(:class:`tests.sitl.px4.Px4Sitl`) with their working directories and logs in the test's
``tmp_path``; when the test fails, the last lines of every instance's log are added to its
report.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Callable, Generator, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from fleet.world import World
from sim.runner import homes_from_world
from tests.e2e.backends import Drones
from tests.sitl.backend import BATTERY_AT_MODEL_RATE, px4_drones, sitl_for
from tests.sitl.px4 import (
    BUILD_ENV,
    DEFAULT_SPEED,
    QUADROTOR_MODEL,
    SPEED_ENV,
    Px4Build,
    Px4Error,
    Px4Instance,
    Px4Sitl,
)

PX4_RUNS = pytest.StashKey[list[Px4Sitl]]()
"""The PX4 runs a test started, for its failure report."""

Launcher = Callable[..., Px4Sitl]
Fleet = Callable[..., AbstractAsyncContextManager[Drones]]


RUN_LOCK = Path(tempfile.gettempdir()) / "streetfleet-sitl.lock"
"""Held while a test runs PX4: SITL instance numbers and ports are fixed, so two tests (on two
pytest-xdist workers, or two pytest runs) must not run PX4 at the same time."""


@pytest.fixture(autouse=True)
def _one_px4_run_at_a_time(request: pytest.FixtureRequest) -> Generator[None, None, None]:
    if "px4_build" not in request.fixturenames:
        yield
        return
    with RUN_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # waits for the other run to finish
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def px4_build() -> Px4Build:
    """The PX4 SITL build under test."""
    build = Px4Build.from_env()
    if build is None:
        pytest.skip(
            f"{BUILD_ENV} is not set: the SITL suite needs a PX4 build "
            "(make px4_sitl_default; see docs/testing.md)"
        )
    try:
        build.validate()
    except Px4Error as exc:
        pytest.fail(str(exc))
    return build


@pytest.fixture(scope="session")
def px4_speed() -> float:
    """PX4_SIM_SPEED_FACTOR of the run; the service's AcceleratedClock uses the same."""
    raw = os.environ.get(SPEED_ENV, "").strip()
    if not raw:
        return DEFAULT_SPEED
    try:
        speed = float(raw)
    except ValueError:
        pytest.fail(f"{SPEED_ENV}={raw!r} is not a number")
    if not speed > 0:
        pytest.fail(f"{SPEED_ENV} must be positive, got {raw}")
    return speed


@pytest.fixture
def px4(request: pytest.FixtureRequest, px4_build: Px4Build, tmp_path: Path) -> Launcher:
    """``px4(count, world, *, speed, params=None, model=..., first_instance=0)``: a
    :class:`Px4Sitl` of ``count`` instances standing on the world's pads (instance i on pad
    i mod len(pads), like the sim), not started yet: enter it with ``async with``."""
    runs = request.node.stash.setdefault(PX4_RUNS, [])

    def launch(
        count: int,
        world: World,
        *,
        speed: float,
        params: Mapping[str, Any] | None = None,
        model: str = QUADROTOR_MODEL,
        first_instance: int = 0,
    ) -> Px4Sitl:
        homes = homes_from_world(world, count, start=first_instance)
        instances = [
            Px4Instance(
                first_instance + i,
                (h.lat, h.lon, h.alt),
                model,
                speed,
                {**BATTERY_AT_MODEL_RATE, **dict(params or {})},
            )
            for i, h in enumerate(homes)
        ]
        sitl = Px4Sitl(
            px4_build,
            instances,
            tmp_path,
            extra_ports={
                i.api_port: f"API link of PX4 instance {i.index}, where the service listens"
                for i in instances
            },
        )
        runs.append(sitl)
        return sitl

    return launch


@pytest.fixture
def px4_fleet(
    request: pytest.FixtureRequest, px4_build: Px4Build, px4_speed: float, tmp_path: Path
) -> Fleet:
    """``px4_fleet(count, world, params=None)``: an async context manager giving ``count`` PX4
    SITL instances on the world's pads as :class:`tests.e2e.backends.Drones` (the form the shared
    scenario bodies take), at the suite's speed; their logs join a failed test's report."""
    runs = request.node.stash.setdefault(PX4_RUNS, [])

    def fleet(
        count: int, world: World, *, params: Mapping[str, Any] | None = None
    ) -> AbstractAsyncContextManager[Drones]:
        sitl = sitl_for(px4_build, count, world, px4_speed, tmp_path / "px4", params)
        runs.append(sitl)
        return px4_drones(sitl, px4_speed)

    return fleet


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    for sitl in item.stash.get(PX4_RUNS, []):
        for name, text in sitl.tails().items():
            report.sections.append((f"{name}: log tail", text))
