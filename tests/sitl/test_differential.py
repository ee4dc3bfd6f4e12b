"""The differential check as a test, opt-in: the delivery flown on the sim and on PX4 SITL,
compared by what the service observed; every difference must be explained
(:data:`tests.sitl.differential.EXPLAINED`)."""

from __future__ import annotations

import pytest

from tests.sitl.differential import report, run
from tests.sitl.px4 import Px4Build

pytestmark = [pytest.mark.sitl, pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1800)]


async def test_sim_and_px4_are_observed_alike(px4_build: Px4Build, px4_speed: float) -> None:
    traces, diffs = await run(px4_build, px4_speed)
    print(report(traces, diffs))
    unexplained = [d for d in diffs if not d.explained]
    assert not unexplained, report(traces, diffs)
