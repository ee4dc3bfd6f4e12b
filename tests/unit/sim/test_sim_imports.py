"""Importing the simulators loads no service runtime: what a fresh interpreter holds afterwards.

The import-linter contracts in ``pyproject.toml`` hold ``sim/`` to an allow-list of our modules;
this checks the result at run time, where a package ``__init__`` with side effects (which
import-linter does not see) would show: the project modules in ``sys.modules`` after importing
the simulators in a new interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PROJECT = ("fleet", "missions", "firmware_bridges", "sim", "api")
"""Our top-level packages."""

ALLOWED = frozenset(
    {
        # fleet's pure domain and the world file
        "fleet",
        "fleet.clock",
        "fleet.errors",
        "fleet.geo",
        "fleet.vehicle",
        "fleet.drone",
        "fleet.world",
        "fleet.roads",
        "fleet.worldfile",
        "fleet.worldfile_checks",
        "fleet.worldfile_features",
        # MQTT plumbing (a real van's or payload's client)
        "fleet.mqtt",
        "fleet.mqtt_client",
        "fleet.tasks",
        # the bridges' wire modules and their (empty) package __init__s
        "firmware_bridges",
        "firmware_bridges.mavlink",
        "firmware_bridges.mavlink.wire",
        "firmware_bridges.vda5050",
        "firmware_bridges.vda5050.wire",
        "firmware_bridges.speaker",
        "firmware_bridges.speaker.wire",
    }
)
"""The project modules outside ``sim`` that may be loaded (the allow-list of the import-linter
contracts; the modules of ``firmware_bridges.mavlink.wire`` are allowed too)."""

RUNTIME = (
    "fleet.link",
    "fleet.registry",
    "fleet.events",
    "fleet.store",
    "fleet.settings",
    "fleet.supervisor",
    "fleet.mqtt_broker",
    "firmware_bridges.mavlink.link",
    "firmware_bridges.mavlink.session",
    "firmware_bridges.mavlink.control",
    "firmware_bridges.mavlink.commands",
    "firmware_bridges.mavlink.mission",
    "firmware_bridges.mavlink.metadata",
    "firmware_bridges.mavlink.translate",
    "firmware_bridges.vda5050.link",
    "firmware_bridges.speaker.link",
    "missions",
    "api",
)
"""What must never be loaded (a module, or any module under it)."""

_PROBE = """
import importlib, json, pkgutil, sys
what = sys.argv[1]
if what == "every module":
    import sim
    for info in pkgutil.walk_packages(sim.__path__, "sim."):
        importlib.import_module(info.name)
    importlib.import_module("fleet.worldfile")  # sim.runner loads world files on demand
else:
    importlib.import_module(what)
print(json.dumps(sorted(sys.modules)))
"""


def _loaded_after_importing(what: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, what],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    names: list[str] = json.loads(proc.stdout.splitlines()[-1])
    return {n for n in names if n.split(".")[0] in PROJECT}


def _allowed(name: str) -> bool:
    return (
        name == "sim"
        or name in ALLOWED
        or name.startswith(("sim.", "firmware_bridges.mavlink.wire."))
    )


@pytest.mark.parametrize("what", ["sim", "sim.drone.autopilot", "sim.runner", "every module"])
def test_importing_sim_loads_no_service_runtime(what: str) -> None:
    loaded = _loaded_after_importing(what)
    assert "sim" in loaded
    if what == "every module":  # the probe did reach the drones, vans and payloads
        assert {"sim.drone.vehicle", "sim.van.fleet", "sim.speaker.payload"} <= loaded
    runtime = sorted(n for n in loaded if any(n == r or n.startswith(r + ".") for r in RUNTIME))
    assert not runtime, f"importing {what} loads the service runtime: {runtime}"
    outside = sorted(n for n in loaded if not _allowed(n))
    assert not outside, f"importing {what} loads modules outside sim's allow-list: {outside}"
