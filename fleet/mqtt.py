"""MQTT broker addresses: parse ``mqtt://`` / ``mqtts://`` URLs and build aiomqtt clients.

One place decides how a URL maps onto an ``aiomqtt.Client`` (host, port, credentials, TLS), so
the VDA 5050 bridge, the speaker bridge, the simulators and the tests connect the same way.
``mqtt://user:password@host:1883`` is plain TCP, ``mqtts://host:8883`` is TLS with the system's
CA store (``?ca=/path/ca.pem`` to name a CA file, ``?insecure=1`` to skip verification in tests).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from fleet.errors import ConfigError

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
"""Port used when the URL names none."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where an MQTT broker is and how to log in."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    insecure: bool = False

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """Parse ``mqtt[s]://[user[:password]@]host[:port][?ca=...&insecure=1]``."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ConfigError(f"bad MQTT URL {url!r}: {exc}", url=url) from exc
        if parts.scheme not in DEFAULT_PORTS:
            raise ConfigError(f"bad MQTT URL {url!r}: scheme must be mqtt or mqtts", url=url)
        if not parts.hostname:
            raise ConfigError(f"bad MQTT URL {url!r}: no host", url=url)
        query = parse_qs(parts.query)
        return cls(
            host=parts.hostname,
            port=port or DEFAULT_PORTS[parts.scheme],
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=parts.scheme == "mqtts",
            ca_file=query.get("ca", [None])[0],
            insecure=query.get("insecure", ["0"])[0] in {"1", "true", "yes"},
        )

    @property
    def url(self) -> str:
        """The URL without credentials (safe to log)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``aiomqtt.Client`` (hostname, port, credentials, TLS)."""
        kwargs: dict[str, Any] = {"hostname": self.host, "port": self.port}
        if self.username is not None:
            kwargs["username"] = self.username
            kwargs["password"] = self.password
        if self.tls:
            context = ssl.create_default_context(cafile=self.ca_file)
            if self.insecure:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            kwargs["tls_context"] = context
        return kwargs
