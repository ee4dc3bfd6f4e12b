"""The control API under load: ``GET /v1/vehicles`` with 500 vehicles and ``POST /v1/requests``,
throughput and latency from ``wrk`` in another process, against a bare FastAPI endpoint that
returns the same JSON, measured in the same run.

1. **service**: ``streetfleet``'s own app (:func:`api.app.create_app`) under uvicorn in its own
   process, on a SQLite file: every middleware (problems, audit trail), the bearer-token check
   and the role check on every call, the vehicle views built from the registry (filled with
   ``--vehicles`` vehicles as their links would report them), and for ``POST`` the request
   validated, stored with its items, events and audit lines before the answer. Automatic
   approval is off, so that the dispatcher does not plan the thousands of requests the load
   makes: what is timed is the API, not the dispatch round (``bench.dispatch`` times that).
2. **bare**: a FastAPI app in its own process under the same uvicorn options, with two plain
   routes answering the JSON the service answered (read once from the service before the run):
   what the framework alone costs to answer the same bytes.

Each is loaded by ``wrk`` (``--connections`` connections, ``--seconds`` each, one after the
other, the same Authorization header sent to both). Printed per endpoint: requests/s, p50 and
p99 latency, and the throughput ratio service / bare. Target: ratio >= 0.7 for both endpoints.
SKIPPED when ``wrk`` (Debian package ``wrk``) is not installed.

    python -m bench.api [--vehicles 500] [--seconds 10] [--connections 16]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench import report

BENCH = "api"
TARGET_RATIO = 0.7
ROOT = Path(__file__).resolve().parents[1]
POST_BODY = {"community_id": "C01", "items": [{"sku_id": "mask", "quantity": 2}]}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _server(args: list[str], port: int, log: Path) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.api_server", *args, "--port", str(port)],
        cwd=ROOT,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server {args[0]} stopped: {log.read_text()[-2000:]}")
            try:
                httpx.get(f"{url}/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server {args[0]} did not start in 60 s") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if m is None:
        raise ValueError(f"wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(
    url: str, headers: dict[str, str], seconds: int, connections: int, body: Any | None, tmp: Path
) -> dict[str, float]:
    """Load ``url`` with wrk; requests/s, p50/p99 (ms), non-2xx answers and socket errors."""
    cmd = [
        "wrk",
        "-t",
        "1",
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    if body is not None:
        script = tmp / "post.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(json.dumps(body))}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
        cmd += ["-s", str(script)]
    out = subprocess.run(
        [*cmd, url], capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": float(sum(int(g) for g in errors.groups())) if errors else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__.splitlines()[0])
    ap.add_argument("--vehicles", type=int, default=500)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args(argv)
    if shutil.which("wrk") is None:
        return report.skipped(
            BENCH, "wrk is not installed (Debian package wrk: make system-packages)"
        )
    print(f"machine: {report.machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmpdir:
        tmp = Path(tmpdir)
        secret = secrets.token_urlsafe(32)
        settings: dict[str, Any] = {
            "database": {"url": f"sqlite:///{tmp / 'streetfleet.db'}"},
            "world": {"path": str(ROOT / "examples" / "worlds" / "shatou.geojson")},
            "auth": {"secret": secret},
            "requests": {"auto_approve": False},
            "logging": {"level": "warning"},
            "vda5050": {"links": []},
            "broadcast": {"speaker_links": []},
            "mavlink": {"metadata_cache_dir": str(tmp / "metadata")},
        }
        env = {
            **os.environ,
            "STREETFLEET_DATABASE__URL": settings["database"]["url"],
            "STREETFLEET_WORLD__PATH": settings["world"]["path"],
        }
        made = subprocess.run(
            [sys.executable, "-m", "api.cli", "users", "create", "bench-op", "--role", "operator"],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
        if made.returncode != 0:
            return report.failed(BENCH, f"could not create the account: {made.stderr}")
        password = made.stdout.split("password: ")[1].strip()
        rows: dict[str, dict[str, dict[str, float]]] = {}
        with _server(
            ["service", "--vehicles", str(args.vehicles), "--settings", json.dumps(settings)],
            _free_port(),
            tmp / "service.log",
        ) as url:
            token = httpx.post(
                f"{url}/v1/auth/token", data={"username": "bench-op", "password": password}
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            vehicles = httpx.get(f"{url}/v1/vehicles", headers=headers).json()
            if len(vehicles) != args.vehicles:
                return report.failed(BENCH, f"the service lists {len(vehicles)} vehicles")
            posted = httpx.post(f"{url}/v1/requests", json=POST_BODY, headers=headers)
            if posted.status_code != 201:
                return report.failed(BENCH, f"POST /v1/requests answered {posted.text}")
            sample = tmp / "sample.json"
            sample.write_text(json.dumps({"vehicles": vehicles, "request": posted.json()}))
            print(
                f"GET /v1/vehicles: {len(vehicles)} vehicles, "
                f"{len(json.dumps(vehicles)) / 1024:.0f} KiB of JSON"
            )
            rows["service"] = {
                "GET /v1/vehicles": wrk(
                    f"{url}/v1/vehicles", headers, args.seconds, args.connections, None, tmp
                ),
                "POST /v1/requests": wrk(
                    f"{url}/v1/requests", headers, args.seconds, args.connections, POST_BODY, tmp
                ),
            }
        with _server(["bare", "--sample", str(sample)], _free_port(), tmp / "bare.log") as url:
            rows["bare"] = {
                "GET /v1/vehicles": wrk(
                    f"{url}/v1/vehicles", headers, args.seconds, args.connections, None, tmp
                ),
                "POST /v1/requests": wrk(
                    f"{url}/v1/requests", headers, args.seconds, args.connections, POST_BODY, tmp
                ),
            }
    print(f"\n{args.connections} connections, {args.seconds} s each, wrk in its own process")
    print(f"{'endpoint':<20} {'server':<8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    targets = report.Targets(BENCH)
    for endpoint in ("GET /v1/vehicles", "POST /v1/requests"):
        for server in ("service", "bare"):
            r = rows[server][endpoint]
            print(
                f"{endpoint:<20} {server:<8} {r['rps']:>9.0f} {r['p50_ms']:>8.1f} "
                f"{r['p99_ms']:>8.1f} {r['non2xx'] + r['socket_errors']:>8.0f}"
            )
        s, b = rows["service"][endpoint], rows["bare"][endpoint]
        ratio = s["rps"] / b["rps"]
        clean = s["non2xx"] == 0 and s["socket_errors"] == 0
        print(f"{endpoint:<20} service / bare = {ratio:.2f}")
        targets.check(
            f"{endpoint} throughput >= {TARGET_RATIO} x bare FastAPI, every answer 2xx",
            ratio >= TARGET_RATIO and clean,
            f"{ratio:.2f} ({s['rps']:.0f} vs {b['rps']:.0f} req/s; p99 {s['p99_ms']:.1f} vs "
            f"{b['p99_ms']:.1f} ms; {s['non2xx'] + s['socket_errors']:.0f} not 2xx)",
        )
    return targets.finish()


if __name__ == "__main__":
    sys.exit(main())
