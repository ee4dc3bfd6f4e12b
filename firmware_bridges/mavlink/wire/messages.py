"""Decoded MAVLink messages as the bridge and the simulators see them.

pymavlink is untyped for mypy here (``follow_imports = "skip"`` in ``pyproject.toml``): its
message classes, and every field read off a message, are ``Any``. :data:`Message` names that type
in signatures, so they say what they take; values read off a message are typed where they enter
our code (``int(msg.seq)``, a typed local, a domain value).
"""

from __future__ import annotations

from typing import Any, TypeAlias

Message: TypeAlias = Any
"""A decoded pymavlink message (a ``MAVLink_message`` subclass instance)."""
