"""Schemathesis against the service's own OpenAPI: every operation is called with generated
inputs (valid and invalid) by an admin over real HTTP, and every answer must be documented:
no server error, a documented status code, the documented content type and body schema.

The service runs as ``streetfleet serve`` in its own process, on a SQLite file, with an admin
made by ``streetfleet users create``; schemathesis' own command (``st run``) calls it. The number of
examples per operation is bounded (``EXAMPLES``; ``STREETFLEET_SCHEMA_EXAMPLES`` raises it for a
longer local run). Left out: ``GET /v1/events/stream``, an endless ``text/event-stream``
(``tests/integration/test_api_live.py`` covers it).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service import ROOT, WORLDS
from tests.support import free_port

EXAMPLES = int(os.environ.get("STREETFLEET_SCHEMA_EXAMPLES", "15"))
PASSWORD = "schema-admin-password"
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    )
)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("schema")
    port = free_port()
    env = {
        **os.environ,
        "STREETFLEET_DATABASE__URL": f"sqlite:///{tmp / 'streetfleet.db'}",
        "STREETFLEET_WORLD__PATH": str(WORLDS / "shatou.geojson"),
        "STREETFLEET_SERVICE__PORT": str(port),
        "STREETFLEET_AUTH__SECRET": secrets.token_urlsafe(32),
        "STREETFLEET_LOGGING__LEVEL": "warning",
        "STREETFLEET_VDA5050__LINKS": "[]",
        "STREETFLEET_BROADCAST__SPEAKER_LINKS": "[]",
        "STREETFLEET_MAVLINK__METADATA_CACHE_DIR": str(tmp / "metadata"),
    }
    cli = str(Path(sys.executable).with_name("streetfleet"))
    made = subprocess.run(
        [cli, "users", "create", "schema-admin", "--role", "admin", "--password-stdin"],
        input=PASSWORD + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    log = tmp / "serve.log"  # a file, not a pipe nobody reads (a full pipe would block it)
    proc = subprocess.Popen([cli, "serve"], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"the service stopped: {log.read_text()[-3000:]}"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service did not start in 60 s"
            time.sleep(0.2)
        r = httpx.post(
            f"{url}/v1/auth/token", data={"username": "schema-admin", "password": PASSWORD}
        )
        token = r.json()["access_token"]
        # stock to move and a request to act on, so that operations get past their 404s
        auth = {"Authorization": f"Bearer {token}"}
        httpx.post(
            f"{url}/v1/warehouses/W1/stock", json={"sku_id": "mask", "quantity": 1000}, headers=auth
        )
        httpx.post(
            f"{url}/v1/requests",
            json={"community_id": "C01", "items": [{"sku_id": "mask", "quantity": 5}]},
            headers=auth,
        )
        yield {"url": url, "headers": auth}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_every_answer_is_documented(service: dict[str, Any], tmp_path: Path) -> None:
    """``st run`` over every operation (examples, coverage, fuzzing and stateful phases), each
    answer checked against the document; any failure fails the test with schemathesis' report
    (each with a ``curl`` line to reproduce it)."""
    st = str(Path(sys.executable).with_name("st"))
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [
            st,
            "run",
            f"{service['url']}/openapi.json",
            "--header",
            f"Authorization: {service['headers']['Authorization']}",
            "--checks",
            CHECKS,
            "--max-examples",
            str(EXAMPLES),
            "--exclude-path",
            "/v1/events/stream",
            "--request-timeout",
            "30",
            "--seed",
            "20261207",
            "--no-color",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    assert "Tested: " in run.stdout
