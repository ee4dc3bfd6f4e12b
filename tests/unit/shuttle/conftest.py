"""The fake fleet fixture of the shuttle tests (:mod:`tests.unit.missions.harness`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.unit.missions.harness import FakeFleet, open_fleet


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[FakeFleet]:
    """The mission service over fake vehicles, on a manual clock, with default settings."""
    async with open_fleet(tmp_path) as f:
        yield f
