"""The ``VehicleLink`` port: one connection to vehicles over one transport, made from a URL.

A link is an async context manager. Entering it opens the transport and starts every task it
needs inside its own ``asyncio.TaskGroup``; leaving it stops them and closes the transport. While
open it discovers vehicles, adds them to the :class:`fleet.registry.VehicleRegistry` with a
control handle (e.g. :class:`fleet.drone.DroneControl`), keeps their
:class:`fleet.vehicle.VehicleStatus` up to date and publishes vehicle events on the
:class:`fleet.events.EventBus`.

Links are created from URLs through a scheme registry (``mavlink+udpin://127.0.0.1:14540``,
``vda5050+mqtt://host:1883/acme/VAN-01``). The composition root registers the bridges' schemes
before it creates links, explicitly: each bridge's ``link.register()``
(``firmware_bridges.mavlink.link``, ``firmware_bridges.vda5050.link``,
``firmware_bridges.speaker.link``); importing a bridge registers nothing, and ``fleet`` itself
knows no bridge.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import SplitResult, urlsplit

from fleet.errors import ConfigError

if TYPE_CHECKING:
    from fleet.clock import Clock
    from fleet.events import EventBus
    from fleet.registry import VehicleRegistry


@dataclass(frozen=True)
class LinkContext:
    """What every link gets from the composition root."""

    registry: VehicleRegistry
    bus: EventBus
    clock: Clock
    options: Mapping[str, Any] = field(default_factory=dict)
    """Bridge-specific settings (e.g. the ``mavlink`` settings section as a dict)."""


class VehicleLink(ABC):
    """A connection to one or more vehicles over one transport."""

    def __init__(self, url: str, ctx: LinkContext) -> None:
        self.url = url
        self.ctx = ctx

    @abstractmethod
    async def __aenter__(self) -> Self: ...

    @abstractmethod
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...

    @property
    @abstractmethod
    def vehicle_ids(self) -> list[str]:
        """Vehicles this link has discovered so far."""


LinkFactory = Callable[[str, SplitResult, LinkContext], VehicleLink]
"""Builds a link from its URL (raw and parsed) and the context."""

_SCHEMES: dict[str, LinkFactory] = {}


def register_scheme(scheme: str, factory: LinkFactory) -> None:
    """Make ``scheme://...`` URLs create links with ``factory`` (idempotent per factory)."""
    existing = _SCHEMES.get(scheme)
    if existing is not None and existing is not factory:
        raise ConfigError(f"link scheme {scheme!r} is registered twice", scheme=scheme)
    _SCHEMES[scheme] = factory


def registered_schemes() -> list[str]:
    """Every scheme a link can be created for."""
    return sorted(_SCHEMES)


def create_link(url: str, ctx: LinkContext) -> VehicleLink:
    """Create the link for ``url``; raises ``ConfigError`` for an unknown scheme or bad URL."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigError(f"bad link URL {url!r}: {exc}", url=url) from exc
    factory = _SCHEMES.get(parts.scheme)
    if factory is None:
        known = ", ".join(registered_schemes()) or "none registered"
        raise ConfigError(
            f"unknown link scheme {parts.scheme!r} in {url!r} (known: {known})", url=url
        )
    return factory(url, parts, ctx)
