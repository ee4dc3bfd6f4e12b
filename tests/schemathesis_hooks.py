"""Schemathesis hooks for tests/integration/test_api_schema.py (``SCHEMATHESIS_HOOKS``)."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.serializer("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave")
def _wav(ctx: Any, value: Any) -> bytes:
    """Clip uploads are raw bytes (generated as the schema's binary string)."""
    return value if isinstance(value, bytes) else str(value).encode()
