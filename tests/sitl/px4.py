"""Real PX4 SITL for the opt-in suite: find a build, start one ``px4`` per vehicle, stop them.

The conventions follow PX4-Autopilot itself (v1.14 to main):

* ``Tools/simulation/sitl_multiple_run.sh`` starts instance *N* as
  ``build/<target>/bin/px4 -i N -d build/<target>/etc`` from its own working directory. We pass
  the working directory with ``-w`` (``platforms/posix/src/px4/common/main.cpp``: ``-d`` daemon
  mode without the pxh shell, ``-i`` instance, ``-w`` working directory, the positional argument
  is the ROMFS ``etc`` folder, symlinked into the working directory). The working directory
  holds ``eeprom/parameters_<autostart>`` and ``log/``, so a fresh directory per test starts
  from default parameters.
* ``ROMFS/px4fmu_common/init.d-posix/rcS`` picks the airframe whose file name is
  ``<digits>_$PX4_SIM_MODEL`` in ``etc/init.d-posix/airframes`` (``sihsim_quadx`` is
  ``10040_sihsim_quadx``), sets ``MAV_SYS_ID`` to N+1, applies ``PX4_PARAM_<NAME>=<value>``
  variables with ``param set``, and with ``PX4_SIM_SPEED_FACTOR`` raises COM_DL_LOSS_T to
  ``factor x 10`` (the data-link timeout stays 10 s of real time).
* ``px4-rc.simulator`` copies ``PX4_HOME_LAT``/``LON``/``ALT`` into SIH's ``SIH_LOC_LAT0``,
  ``SIH_LOC_LON0`` and ``SIH_LOC_H0``: where the vehicle stands at boot.
* ``px4-rc.mavlink``: the API (offboard) link binds UDP 14580+N and sends to 14540+N
  (instances above 9 all send to 14549) in ``onboard`` stream mode; the GCS link binds 18570+N
  and sends to 14550; the payload, gimbal and (SIH) display links bind 14280+N, 13030+N and
  19450+N.
* ``main.cpp`` refuses to start instance N while another process holds the lock on
  ``/tmp/px4_lock-N``, and exits cleanly on SIGTERM.

:class:`Px4Sitl` is an async context manager that checks all of that before starting (the build,
the model, the instance locks, every fixed UDP port), starts the instances, and on exit stops
them with SIGTERM, then SIGKILL after a grace period. Each instance writes ``out.log`` and
``err.log`` in its working directory; :meth:`Px4Sitl.tails` gives their last lines for failure
reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import re
import signal
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

BUILD_ENV = "STREETFLEET_PX4_BUILD"
"""Environment variable pointing at a PX4 build folder (``build/px4_sitl_default``)."""
SPEED_ENV = "STREETFLEET_PX4_SPEED"
"""Environment variable: PX4_SIM_SPEED_FACTOR of the SITL suite (default :data:`DEFAULT_SPEED`)."""
DEFAULT_SPEED = 4.0
"""Default time acceleration of SITL runs: SIH keeps up with it on two shared cores."""
QUADROTOR_MODEL = "sihsim_quadx"
"""PX4_SIM_MODEL of the SIH quadrotor (airframe 10040)."""
ROVER_MODELS = ("sihsim_rover_ackermann", "sihsim_rover")
"""PX4_SIM_MODEL names the SIH Ackermann rover has had (v1.16, main)."""

API_PORT_BASE = 14540
"""Instance N sends its API link to 127.0.0.1:14540+N..."""
API_PORT_SHARED = 14549
"""... and every instance above 9 to 14549."""
GCS_PORT = 14550
"""Where every instance sends its GCS link (QGroundControl's port)."""
LOCAL_PORT_BASES: Mapping[str, int] = {
    "API link": 14580,
    "GCS link": 18570,
    "payload link": 14280,
    "gimbal link": 13030,
}
"""UDP ports instance N binds: base + N (``px4-rc.mavlink``)."""
SIH_DISPLAY_PORT_BASE = 19450
"""UDP port the SIH display link of instance N binds: 19450+N."""
LOCK_DIR = Path("/tmp")
"""Where PX4 keeps ``px4_lock-N`` (``LOCK_FILE_PATH`` in ``main.cpp``)."""
STOP_GRACE_S = 10.0
"""Real seconds between SIGTERM and SIGKILL when stopping an instance."""
TAIL_LINES = 40
"""Log lines shown per instance in a failure report."""

_PARAM_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,15}$")


class Px4Error(RuntimeError):
    """PX4 SITL cannot be used as asked; the message says why and what to do."""


def api_port(instance: int) -> int:
    """UDP port instance ``instance`` sends its API link to."""
    if instance < 0:
        raise ValueError("PX4 instance numbers start at 0")
    return API_PORT_BASE + instance if instance <= 9 else API_PORT_SHARED


def system_id(instance: int) -> int:
    """MAVLink system id of instance ``instance`` (rcS: ``MAV_SYS_ID = N + 1``)."""
    return instance + 1


def local_ports(instance: int, model: str = QUADROTOR_MODEL) -> dict[str, int]:
    """UDP ports instance ``instance`` binds, by purpose."""
    ports = {name: base + instance for name, base in LOCAL_PORT_BASES.items()}
    if model.startswith("sihsim_"):
        ports["SIH display link"] = SIH_DISPLAY_PORT_BASE + instance
    return ports


def format_param(value: float | int | str) -> str:
    """A parameter value as ``param set`` reads it: integers without a decimal point."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"a PX4 parameter value must be finite, got {value}")
        return repr(value)
    text = str(value).strip()
    if not text or any(c.isspace() for c in text):
        raise ValueError(f"bad PX4 parameter value {value!r}")
    return text


@dataclass(frozen=True)
class Px4Build:
    """A PX4 SITL build folder (``PX4-Autopilot/build/px4_sitl_default``)."""

    root: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Px4Build | None:
        """The build named by :data:`BUILD_ENV`, or None when it is unset or empty."""
        value = (env if env is not None else os.environ).get(BUILD_ENV, "").strip()
        return cls(Path(value).expanduser()) if value else None

    @property
    def binary(self) -> Path:
        return self.root / "bin" / "px4"

    @property
    def etc(self) -> Path:
        """The ROMFS folder given to ``px4`` (startup scripts, airframes)."""
        return self.root / "etc"

    @property
    def airframes(self) -> Path:
        return self.etc / "init.d-posix" / "airframes"

    def validate(self) -> None:
        """Raise :class:`Px4Error` unless this looks like a built ``px4_sitl`` target."""
        hint = (
            f"{BUILD_ENV} must point at a PX4 SITL build folder, e.g. "
            "PX4-Autopilot/build/px4_sitl_default after `make px4_sitl_default` "
            "(docs/testing.md)"
        )
        if not self.root.is_dir():
            raise Px4Error(f"{self.root} is not a directory; {hint}")
        if not self.binary.is_file():
            raise Px4Error(f"{self.binary} does not exist; {hint}")
        if not os.access(self.binary, os.X_OK):
            raise Px4Error(f"{self.binary} is not executable")
        if not (self.etc / "init.d-posix" / "rcS").is_file():
            raise Px4Error(f"{self.etc}/init.d-posix/rcS does not exist; {hint}")
        if not self.airframes.is_dir():
            raise Px4Error(f"{self.airframes} does not exist; {hint}")

    def models(self) -> list[str]:
        """PX4_SIM_MODEL names this build has an airframe for (``<digits>_<model>`` files)."""
        if not self.airframes.is_dir():
            return []
        out = []
        for path in self.airframes.iterdir():
            m = re.fullmatch(r"(\d+)_([^.]+)", path.name)
            if m:
                out.append(m.group(2))
        return sorted(out)

    def require_model(self, model: str) -> None:
        """Raise :class:`Px4Error` unless the build has an airframe for ``model``."""
        models = self.models()
        if model not in models:
            sih = [m for m in models if m.startswith("sihsim_")]
            raise Px4Error(
                f"this PX4 build has no airframe for PX4_SIM_MODEL={model} "
                f"(in {self.airframes}); SIH models available: {', '.join(sih) or 'none'}"
            )

    def startup_reads(self, variable: str) -> bool:
        """Whether PX4's SITL start scripts (``etc/init.d-posix/rcS``, ``px4-rc.*``) use
        ``variable``: older PX4 versions ignore some of the variables the suite sets."""
        folder = self.etc / "init.d-posix"
        for path in folder.iterdir() if folder.is_dir() else ():
            if path.is_file() and (path.name == "rcS" or path.name.startswith("px4-rc")):
                with contextlib.suppress(OSError):
                    if variable in path.read_text(errors="replace"):
                        return True
        return False

    def rover_model(self) -> str | None:
        """The SIH Ackermann rover's model name in this build, if it has one."""
        models = set(self.models())
        return next((m for m in ROVER_MODELS if m in models), None)


@dataclass(frozen=True)
class Px4Instance:
    """How to start one PX4 SITL instance."""

    index: int
    """PX4 instance number N (``-i N``): system id N+1, API port 14540+N."""
    home: tuple[float, float, float]
    """(lat, lon, ground altitude AMSL m): PX4_HOME_LAT/LON/ALT."""
    model: str = QUADROTOR_MODEL
    speed: float = 1.0
    """PX4_SIM_SPEED_FACTOR (1: real time, not set)."""
    params: Mapping[str, float | int | str] = field(default_factory=dict)
    """PX4_PARAM_<NAME>=<value> presets."""

    def __post_init__(self) -> None:
        if self.index < 0:
            raise ValueError("PX4 instance numbers start at 0")
        if system_id(self.index) > 254:
            raise ValueError(f"instance {self.index} would have system id above 254")
        if not self.speed > 0:
            raise ValueError(f"speed factor must be positive, got {self.speed}")
        for name in self.params:
            if not _PARAM_NAME.match(name):
                raise ValueError(f"bad PX4 parameter name {name!r} (upper case, at most 16)")

    @property
    def system_id(self) -> int:
        return system_id(self.index)

    @property
    def api_port(self) -> int:
        return api_port(self.index)

    def local_ports(self) -> dict[str, int]:
        return local_ports(self.index, self.model)

    def command(self, build: Px4Build, workdir: Path) -> list[str]:
        """The ``px4`` command line."""
        return [
            str(build.binary),
            "-d",
            "-i",
            str(self.index),
            "-w",
            str(workdir),
            str(build.etc),
        ]

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) without inherited ``PX4_*``
        variables, plus this instance's model, home, speed and parameter presets."""
        env = {
            k: v
            for k, v in (base if base is not None else os.environ).items()
            if not k.startswith("PX4_")
        }
        lat, lon, alt = self.home
        env["PX4_SIM_MODEL"] = self.model
        if self.model.startswith("sihsim_"):
            env["PX4_SIMULATOR"] = "sihsim"
        env["PX4_HOME_LAT"] = f"{lat:.8f}"
        env["PX4_HOME_LON"] = f"{lon:.8f}"
        env["PX4_HOME_ALT"] = f"{alt:.2f}"
        if self.speed != 1.0:
            speed = float(self.speed)
            env["PX4_SIM_SPEED_FACTOR"] = str(int(speed)) if speed.is_integer() else repr(speed)
        for name, value in self.params.items():
            env[f"PX4_PARAM_{name}"] = format_param(value)
        return env


def busy_udp_ports(ports: Iterable[int]) -> list[int]:
    """The ports of ``ports`` something on this machine has bound (UDP, any address)."""
    busy = []
    for port in sorted(set(ports)):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError as exc:
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    busy.append(port)
                else:
                    raise
    return busy


def instance_locked(index: int, lock_dir: Path = LOCK_DIR) -> bool:
    """Whether a running ``px4`` holds the lock of instance ``index``."""
    path = lock_dir / f"px4_lock-{index}"
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    except PermissionError:
        return True  # another user's PX4 made it; instance N is not ours to take
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of a text file ('' when it does not exist)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ""
    text = data[-256 * lines :].decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


class Px4Process:
    """One running ``px4`` with its logs."""

    def __init__(self, spec: Px4Instance, build: Px4Build, workdir: Path) -> None:
        self.spec = spec
        self.build = build
        self.workdir = workdir
        self.out_log = workdir / "out.log"
        self.err_log = workdir / "err.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, base_env: Mapping[str, str] | None = None) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.out_log.open("ab") as out, self.err_log.open("ab") as err:
            self.proc = await asyncio.create_subprocess_exec(
                *self.spec.command(self.build, self.workdir),
                cwd=self.workdir,
                env=self.spec.environment(base_env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.returncode

    async def stop(self, grace: float = STOP_GRACE_S) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` real seconds; the exit status.

        The process runs in its own session: whatever it started (its startup script and
        ``px4-*`` clients) is killed with it, by that session's process group.
        """
        proc = self.proc
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.returncode

    def tail(self, lines: int = TAIL_LINES) -> str:
        """Last lines of ``out.log`` and ``err.log``."""
        parts = []
        for path in (self.out_log, self.err_log):
            text = tail(path, lines)
            if text:
                parts.append(f"--- {path} ---\n{text}")
        return "\n".join(parts) or f"(no output in {self.workdir})"


class Px4Sitl:
    """Several PX4 SITL instances for one test; an async context manager.

    ``__aenter__`` checks the build and model, that no other ``px4`` holds an instance's lock and
    that every fixed UDP port is free (PX4's own ports and ``extra_ports``, e.g. the API ports the
    service will listen on), then starts the instances. Any problem raises :class:`Px4Error`
    naming the port, instance or file.
    """

    def __init__(
        self,
        build: Px4Build,
        instances: Sequence[Px4Instance],
        workdir: Path,
        *,
        extra_ports: Mapping[int, str] | None = None,
        base_env: Mapping[str, str] | None = None,
        lock_dir: Path = LOCK_DIR,
        grace: float = STOP_GRACE_S,
    ) -> None:
        if not instances:
            raise ValueError("no PX4 instance to start")
        indexes = [i.index for i in instances]
        if len(set(indexes)) != len(indexes):
            raise ValueError(f"PX4 instance numbers must differ, got {indexes}")
        self.build = build
        self.instances = list(instances)
        self.workdir = workdir
        self.extra_ports = dict(extra_ports or {})
        self.base_env = base_env
        self.lock_dir = lock_dir
        self.grace = grace
        self.processes = [Px4Process(i, build, workdir / f"px4-{i.index}") for i in instances]

    def api_ports(self) -> list[int]:
        """The ports the instances send their API links to (one service link each)."""
        return sorted({i.api_port for i in self.instances})

    def fixed_ports(self) -> dict[int, str]:
        """Every UDP port the run needs free, with what it is for."""
        ports: dict[int, str] = {}
        for i in self.instances:
            for purpose, port in i.local_ports().items():
                ports[port] = f"{purpose} of PX4 instance {i.index}"
        ports.update(self.extra_ports)
        return ports

    def preflight(self) -> None:
        """Raise :class:`Px4Error` unless everything needed to start is there and free."""
        self.build.validate()
        for model in sorted({i.model for i in self.instances}):
            self.build.require_model(model)
        needed = {"PX4_HOME_LAT": "the vehicles would not stand on the world's pads"}
        if any(i.params for i in self.instances):
            needed["PX4_PARAM_"] = "parameter presets (PX4_PARAM_<NAME>) would be ignored"
        for variable, consequence in needed.items():
            if not self.build.startup_reads(variable):
                raise Px4Error(
                    f"this PX4 build's start scripts ({self.build.etc}/init.d-posix) do not read "
                    f"{variable}: {consequence}. Use a newer PX4 (docs/testing.md)"
                )
        locked = [i.index for i in self.instances if instance_locked(i.index, self.lock_dir)]
        if locked:
            raise Px4Error(
                "PX4 instance(s) "
                + ", ".join(map(str, locked))
                + f" already running on this machine (lock held on {self.lock_dir}/px4_lock-N);"
                " stop them first: SITL instance numbers and ports are fixed"
            )
        ports = self.fixed_ports()
        busy = busy_udp_ports(ports)
        if busy:
            raise Px4Error(
                "UDP port(s) in use, PX4 SITL needs them free: "
                + "; ".join(f"{p} ({ports[p]})" for p in busy)
                + ". PX4's ports are fixed: stop whatever holds them (another SITL run, "
                "`streetfleet sim` or the demo on 14540...); QGroundControl on 14550 is no "
                "conflict"
            )

    async def __aenter__(self) -> Px4Sitl:
        self.preflight()
        try:
            for p in self.processes:
                await p.start(self.base_env)
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop every started instance (SIGTERM, SIGKILL after the grace period)."""
        await asyncio.gather(*(p.stop(self.grace) for p in self.processes))

    def exited(self) -> list[Px4Process]:
        """Instances whose process has ended."""
        return [p for p in self.processes if p.returncode is not None]

    def raise_if_exited(self) -> None:
        """Raise :class:`Px4Error` with the log tail if an instance stopped on its own."""
        gone = self.exited()
        if gone:
            p = gone[0]
            raise Px4Error(
                f"PX4 instance {p.spec.index} exited with status {p.returncode}\n{p.tail()}"
            )

    def tails(self, lines: int = TAIL_LINES) -> dict[str, str]:
        """Log tails by instance, for failure reports."""
        return {
            f"PX4 instance {p.spec.index} (system id {p.spec.system_id})": p.tail(lines)
            for p in self.processes
        }
