"""Shared fixtures: the real Mosquitto and PostgreSQL the tests run against, and espeak-ng.

``STREETFLEET_TEST_MQTT_URL`` (default ``mqtt://127.0.0.1:1883``) and
``STREETFLEET_TEST_DATABASE_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``)
point them elsewhere. Without the service (or, for ``espeak_ng``, the program) a test skips
with the reason; with ``CI=true`` it fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.support import require_program, require_service, tcp_reachable

MQTT_URL = os.environ.get("STREETFLEET_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")
PG_URL = os.environ.get(
    "STREETFLEET_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def mqtt_url() -> str:
    """URL of the real MQTT broker (Mosquitto)."""
    parts = urlsplit(MQTT_URL)
    require_service(
        "Mosquitto",
        tcp_reachable(parts.hostname or "127.0.0.1", parts.port or 1883),
        f"{MQTT_URL}; start it with: mosquitto -d -c /etc/mosquitto/mosquitto.conf",
    )
    return MQTT_URL


@pytest.fixture
def espeak_ng() -> str:
    """Path of espeak-ng, the text-to-speech program broadcasts are spoken with (Debian package
    ``espeak-ng``, in ``scripts/system-packages.txt``). Tests that only need it installed take
    it with ``@pytest.mark.usefixtures("espeak_ng")``."""
    return require_program("espeak-ng")


@pytest.fixture
def mqtt_prefix() -> str:
    """A topic prefix unique to this test, so tests sharing the broker never see each other."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def pg_url() -> str:
    """URL of the real PostgreSQL server (database ``test``)."""
    parts = urlsplit(PG_URL)
    require_service(
        "PostgreSQL",
        tcp_reachable(parts.hostname or "127.0.0.1", parts.port or 5432),
        f"{PG_URL}; start it with: "
        "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    )
    return PG_URL


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    """A fresh PostgreSQL schema for this test, dropped afterwards."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


_FIRST = ("tests/e2e/", "tests/integration/", "tests/conformance/")
"""Directories whose tests wait longest on accelerated clocks and sockets."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Long tests first: the tests that wait longest (``slow``, then end to end, integration and
    conformance) are handed to the pytest-xdist workers before the many short ones, so the
    short ones fill the gaps instead of one long test running alone at the end. The order of
    tests within each group is kept."""

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("slow") is not None:
            return 0
        path = item.nodeid
        for i, prefix in enumerate(_FIRST, start=1):
            if path.startswith(prefix):
                return i
        return len(_FIRST) + 1

    items.sort(key=rank)
