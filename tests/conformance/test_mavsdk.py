"""MAVSDK conformance suite: every scenario of :mod:`mavsdk_scenarios` in its own process.

A scenario that fails a check, times out, or makes mavsdk abort the process (mavsdk 4.1's
``std::future_error`` on a denied or unanswered mode change before arming) fails its own test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conformance.mavsdk_scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 150


@pytest.mark.mavsdk
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_mavsdk_scenario(name: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "tests.conformance.mavsdk_scenarios", name],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"scenario {name} did not finish in {TIMEOUT_S} s\n{e.stdout}\n{e.stderr}")
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-60:])
    assert proc.returncode == 0, f"scenario {name} exited {proc.returncode}\n{tail}"
    assert f"scenario {name}: ok" in proc.stdout
