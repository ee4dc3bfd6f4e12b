"""The SITL launcher without PX4: command lines, environment, port and lock checks, process
supervision and logs.

PX4 itself cannot run here, so the supervision tests start a stand-in ``bin/px4`` (a Python
script) in a fake build folder: it records its command line and environment, writes to stdout and
stderr like PX4 does, and either exits on SIGTERM, ignores it, or dies at start. What it checks is
our handling of a process, not PX4's behaviour; the SITL tests proper need a real build.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.sitl.px4 import (
    BUILD_ENV,
    Px4Build,
    Px4Error,
    Px4Instance,
    Px4Sitl,
    api_port,
    busy_udp_ports,
    format_param,
    instance_locked,
    local_ports,
    system_id,
    tail,
)
from tests.support import eventually, free_port

HOME = (22.5273, 114.0544, 12.0)

FAKE_PX4 = f"""#!{sys.executable}
import json, os, signal, sys, time
mode = os.environ.get("FAKE_PX4_MODE", "term")
wd = sys.argv[sys.argv.index("-w") + 1]
json.dump({{"argv": sys.argv, "cwd": os.getcwd(),
           "env": {{k: v for k, v in os.environ.items() if k.startswith(("PX4_", "FAKE_"))}}}},
          open(os.path.join(wd, "fake.json"), "w"))
print("INFO  [px4] instance:", sys.argv[sys.argv.index("-i") + 1], flush=True)
print("INFO  [init] found model autostart file", flush=True)
if mode == "crash":
    print("ERROR [init] Unknown model " + os.environ.get("PX4_SIM_MODEL", ""), file=sys.stderr,
          flush=True)
    sys.exit(3)
def on_term(sig, frame):
    print("PX4 Exiting...", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term if mode == "term" else signal.SIG_IGN)
print("INFO  [commander] Ready for takeoff!", flush=True)
while True:
    time.sleep(0.05)
"""


def fake_build(root: Path, models: tuple[str, ...] = ("10040_sihsim_quadx",)) -> Px4Build:
    """A folder shaped like ``build/px4_sitl_default`` with the stand-in ``bin/px4``."""
    (root / "bin").mkdir(parents=True)
    px4 = root / "bin" / "px4"
    px4.write_text(FAKE_PX4)
    px4.chmod(px4.stat().st_mode | stat.S_IXUSR)
    airframes = root / "etc" / "init.d-posix" / "airframes"
    airframes.mkdir(parents=True)
    (root / "etc" / "init.d-posix" / "rcS").write_text(
        '#!/bin/sh\ncase $name in "PX4_PARAM_"*) param set "${name#PX4_PARAM_}" "$value" ;; esac\n'
    )
    (root / "etc" / "init.d-posix" / "px4-rc.simulator").write_text(
        "#!/bin/sh\nparam set SIH_LOC_LAT0 ${PX4_HOME_LAT}\n"
    )
    for name in models:
        (airframes / name).write_text("#!/bin/sh\n")
    return Px4Build(root)


@contextmanager
def lock_held(path: Path) -> Iterator[None]:
    """Another process holds PX4's instance lock ``path`` (as a running ``px4`` does)."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.lockf(fd, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)


# --- conventions ---------------------------------------------------------------------------


def test_ports_and_system_ids_follow_px4() -> None:
    assert [api_port(i) for i in (0, 1, 9, 10, 11, 40)] == [
        14540,
        14541,
        14549,
        14549,
        14549,
        14549,
    ]
    assert system_id(0) == 1 and system_id(12) == 13
    assert local_ports(3) == {
        "API link": 14583,
        "GCS link": 18573,
        "payload link": 14283,
        "gimbal link": 13033,
        "SIH display link": 19453,
    }
    assert "SIH display link" not in local_ports(3, "gz_x500")
    with pytest.raises(ValueError, match="start at 0"):
        api_port(-1)


def test_command_line_and_environment(tmp_path: Path) -> None:
    build = Px4Build(tmp_path / "build")
    spec = Px4Instance(
        2, HOME, speed=4.0, params={"NAV_DLL_ACT": 0, "MIS_TAKEOFF_ALT": 10.5, "COM_ARM_X": "1"}
    )
    workdir = tmp_path / "px4-2"
    assert spec.command(build, workdir) == [
        str(tmp_path / "build" / "bin" / "px4"),
        "-d",
        "-i",
        "2",
        "-w",
        str(workdir),
        str(tmp_path / "build" / "etc"),
    ]
    base = {"PATH": "/usr/bin", "HOME": "/root", "PX4_PARAM_GF_ACTION": "3", "PX4_SIM_MODEL": "x"}
    env = spec.environment(base)
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "PX4_SIM_MODEL": "sihsim_quadx",
        "PX4_SIMULATOR": "sihsim",
        "PX4_HOME_LAT": "22.52730000",
        "PX4_HOME_LON": "114.05440000",
        "PX4_HOME_ALT": "12.00",
        "PX4_SIM_SPEED_FACTOR": "4",
        "PX4_PARAM_NAV_DLL_ACT": "0",
        "PX4_PARAM_MIS_TAKEOFF_ALT": "10.5",
        "PX4_PARAM_COM_ARM_X": "1",
    }
    assert (spec.system_id, spec.api_port) == (3, 14542)
    real_time = Px4Instance(0, HOME, speed=1.0).environment({})
    assert "PX4_SIM_SPEED_FACTOR" not in real_time
    assert Px4Instance(0, HOME, speed=2.5).environment({})["PX4_SIM_SPEED_FACTOR"] == "2.5"
    rover = Px4Instance(0, HOME, model="sihsim_rover_ackermann").environment({})
    assert rover["PX4_SIM_MODEL"] == "sihsim_rover_ackermann"


def test_bad_instances_are_refused() -> None:
    with pytest.raises(ValueError, match="parameter name"):
        Px4Instance(0, HOME, params={"nav_dll_act": 0})
    with pytest.raises(ValueError, match="parameter name"):
        Px4Instance(0, HOME, params={"A_NAME_LONGER_THAN_16": 0})
    with pytest.raises(ValueError, match="above 254"):
        Px4Instance(254, HOME)
    with pytest.raises(ValueError, match="positive"):
        Px4Instance(0, HOME, speed=0.0)
    with pytest.raises(ValueError, match="finite"):
        format_param(float("nan"))
    with pytest.raises(ValueError, match="bad PX4 parameter value"):
        format_param("1 2")
    assert format_param(True) == "1"
    assert format_param(0.15) == "0.15"


# --- the build folder ------------------------------------------------------------------------


def test_build_from_env_and_validation(tmp_path: Path) -> None:
    assert Px4Build.from_env({}) is None
    assert Px4Build.from_env({BUILD_ENV: "  "}) is None
    assert Px4Build.from_env({BUILD_ENV: str(tmp_path)}) == Px4Build(tmp_path)
    with pytest.raises(Px4Error, match="not a directory"):
        Px4Build(tmp_path / "missing").validate()
    with pytest.raises(Px4Error, match="bin/px4 does not exist"):
        Px4Build(tmp_path).validate()
    build = fake_build(
        tmp_path / "b",
        (
            "10040_sihsim_quadx",
            "10040_sihsim_quadx.post",
            "10045_sihsim_rover_ackermann",
            "4001_gz_x500",
        ),
    )
    build.validate()
    assert build.models() == ["gz_x500", "sihsim_quadx", "sihsim_rover_ackermann"]
    assert build.rover_model() == "sihsim_rover_ackermann"
    build.require_model("sihsim_quadx")
    with pytest.raises(Px4Error, match=r"sihsim_hexa.*sihsim_quadx, sihsim_rover_ackermann"):
        build.require_model("sihsim_hexa")
    build.binary.chmod(0o644)
    with pytest.raises(Px4Error, match="not executable"):
        build.validate()
    (build.etc / "init.d-posix" / "rcS").unlink()
    build.binary.chmod(0o755)
    with pytest.raises(Px4Error, match="rcS does not exist"):
        build.validate()


# --- ports and locks ------------------------------------------------------------------------


def test_busy_udp_ports_are_found() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        free = free_port(socket.SOCK_DGRAM)
        assert busy_udp_ports([port, free]) == [port]
    assert busy_udp_ports([port]) == []


def test_instance_lock_held_by_another_process(tmp_path: Path) -> None:
    assert not instance_locked(7, tmp_path)  # no lock file
    (tmp_path / "px4_lock-7").touch()
    assert not instance_locked(7, tmp_path)  # left by a px4 that exited
    with lock_held(tmp_path / "px4_lock-7"):
        assert instance_locked(7, tmp_path)
        assert not instance_locked(8, tmp_path)
    assert not instance_locked(7, tmp_path)


def test_preflight_names_what_is_wrong(tmp_path: Path) -> None:
    build = fake_build(tmp_path / "build")
    spec = Px4Instance(41, HOME)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        sitl = Px4Sitl(
            build,
            [spec],
            tmp_path,
            extra_ports={port: "where the service listens"},
            lock_dir=tmp_path,
        )
        with pytest.raises(Px4Error, match=rf"UDP port\(s\) in use.*{port} \(where the service"):
            sitl.preflight()
    sitl.preflight()
    with pytest.raises(Px4Error, match="no airframe for PX4_SIM_MODEL=sihsim_hexa"):
        Px4Sitl(build, [Px4Instance(41, HOME, model="sihsim_hexa")], tmp_path).preflight()
    with pytest.raises(ValueError, match="must differ"):
        Px4Sitl(build, [spec, spec], tmp_path)
    # an older PX4 whose start scripts ignore the variables the suite relies on
    (build.etc / "init.d-posix" / "rcS").write_text("#!/bin/sh\n")
    Px4Sitl(build, [spec], tmp_path, lock_dir=tmp_path).preflight()  # no presets asked
    with_params = Px4Instance(41, HOME, params={"NAV_DLL_ACT": 0})
    with pytest.raises(Px4Error, match="do not read PX4_PARAM_: parameter presets"):
        Px4Sitl(build, [with_params], tmp_path, lock_dir=tmp_path).preflight()
    (build.etc / "init.d-posix" / "px4-rc.simulator").write_text("#!/bin/sh\n")
    with pytest.raises(Px4Error, match="do not read PX4_HOME_LAT"):
        Px4Sitl(build, [spec], tmp_path, lock_dir=tmp_path).preflight()
    with pytest.raises(ValueError, match="no PX4 instance"):
        Px4Sitl(build, [], tmp_path)


def test_preflight_refuses_a_running_instance(tmp_path: Path) -> None:
    build = fake_build(tmp_path / "build")
    with lock_held(tmp_path / "px4_lock-42"):
        sitl = Px4Sitl(build, [Px4Instance(42, HOME)], tmp_path, lock_dir=tmp_path)
        with pytest.raises(Px4Error, match="instance\\(s\\) 42 already running"):
            sitl.preflight()


# --- processes and logs ---------------------------------------------------------------------


def _record(workdir: Path) -> dict | None:
    try:
        return json.loads((workdir / "fake.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


async def test_instances_start_in_their_own_directories_and_stop_on_sigterm(
    tmp_path: Path,
) -> None:
    build = fake_build(tmp_path / "build")
    specs = [Px4Instance(43, HOME, speed=4.0, params={"NAV_DLL_ACT": 0}), Px4Instance(44, HOME)]
    base = {"PATH": os.environ.get("PATH", ""), "FAKE_PX4_MODE": "term", "PX4_PARAM_X": "1"}
    sitl = Px4Sitl(build, specs, tmp_path / "run", base_env=base, lock_dir=tmp_path, grace=5.0)
    async with sitl:
        for p in sitl.processes:
            await eventually(lambda p=p: _record(p.workdir), 10, message="stand-in px4 started")
        sitl.raise_if_exited()
        first = _record(tmp_path / "run" / "px4-43")
        assert first is not None
        assert first["argv"][1:] == [
            "-d",
            "-i",
            "43",
            "-w",
            str(tmp_path / "run" / "px4-43"),
            str(build.etc),
        ]
        assert first["cwd"] == str(tmp_path / "run" / "px4-43")
        assert first["env"]["PX4_SIM_SPEED_FACTOR"] == "4"
        assert first["env"]["PX4_PARAM_NAV_DLL_ACT"] == "0"
        assert "PX4_PARAM_X" not in first["env"]  # inherited PX4_* variables are dropped
        assert first["env"]["FAKE_PX4_MODE"] == "term"
        await eventually(lambda: "Ready for takeoff" in sitl.processes[1].tail(), 10)
    assert [p.returncode for p in sitl.processes] == [0, 0]
    assert "PX4 Exiting..." in (tmp_path / "run" / "px4-43" / "out.log").read_text()
    tails = sitl.tails()
    assert list(tails) == ["PX4 instance 43 (system id 44)", "PX4 instance 44 (system id 45)"]
    assert "instance: 44" in tails["PX4 instance 44 (system id 45)"]


async def test_an_instance_ignoring_sigterm_is_killed_after_the_grace_period(
    tmp_path: Path,
) -> None:
    build = fake_build(tmp_path / "build")
    base = {"PATH": os.environ.get("PATH", ""), "FAKE_PX4_MODE": "ignore-term"}
    sitl = Px4Sitl(
        build, [Px4Instance(45, HOME)], tmp_path, base_env=base, lock_dir=tmp_path, grace=0.5
    )
    async with sitl:
        await eventually(lambda: "Ready for takeoff" in sitl.processes[0].tail(), 10)
        t0 = time.monotonic()
    assert time.monotonic() - t0 >= 0.5
    assert sitl.processes[0].returncode == -9
    assert "PX4 Exiting" not in sitl.processes[0].tail()


async def test_an_instance_dying_at_start_fails_with_its_log(tmp_path: Path) -> None:
    build = fake_build(tmp_path / "build")
    base = {"PATH": os.environ.get("PATH", ""), "FAKE_PX4_MODE": "crash"}
    sitl = Px4Sitl(build, [Px4Instance(46, HOME)], tmp_path, base_env=base, lock_dir=tmp_path)
    async with sitl:
        await eventually(lambda: sitl.exited(), 10, message="the stand-in exits")
        with pytest.raises(Px4Error, match=r"(?s)instance 46 exited with status 3.*Unknown model"):
            sitl.raise_if_exited()
    assert sitl.processes[0].returncode == 3


def test_tail_reads_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    assert tail(log) == ""
    log.write_text("".join(f"line {i}\n" for i in range(1000)))
    assert tail(log, 3) == "line 997\nline 998\nline 999"
