"""VDA 5050 link URLs: which broker, which vans, which topic root.

Forms (``vda5050+mqtts://`` for TLS; credentials and ``ca``/``insecure`` as in
:mod:`fleet.mqtt`)::

    vda5050+mqtt://host:1883/acme/VAN-01     one van: uagv/v2/acme/VAN-01/...
    vda5050+mqtt://host:1883/acme            every van of manufacturer acme: uagv/v2/acme/+/...
    vda5050+mqtt://host:1883/                every van on the broker: uagv/v2/+/+/...
    vda5050+mqtt:///acme/VAN-01              the service's own broker (settings ``mqtt.url`` or
                                             the embedded broker), passed as option broker_url

Query parameters: ``prefix=site-a`` puts a topic root before the interface name
(``site-a/uagv/v2/...``; default none), ``interface=uagv`` names the interface (first topic
level), ``state_timeout=5`` overrides the state timeout (seconds), ``visualization=0`` stops
reading the ``visualization`` topic (read by default: a van may send its state only on change,
at least every 30 s, and shows where it is between states there).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

from firmware_bridges.vda5050 import wire
from fleet.errors import ConfigError

SCHEMES = {"vda5050+mqtt": "mqtt", "vda5050+mqtts": "mqtts"}
"""Link schemes and the broker scheme each uses."""
_FORBIDDEN = set("/#$")


@dataclass(frozen=True, slots=True)
class Vda5050Address:
    """A parsed link URL."""

    broker_url: str | None
    """``mqtt[s]://[user:pass@]host:port[?ca=..]``; None: the service's broker."""
    manufacturer: str | None
    """None: every manufacturer."""
    serial_number: str | None
    """None: every van (of the manufacturer)."""
    prefix: str = ""
    interface: str = wire.DEFAULT_INTERFACE
    state_timeout_s: float | None = None
    visualization: bool = True
    display_url: str = ""
    """The link URL without password (for logs and ``VehicleInfo.link_url``)."""

    @classmethod
    def parse(cls, url: str) -> Vda5050Address:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ConfigError(f"bad VDA 5050 link URL {url!r}: {exc}", url=url) from exc
        broker_scheme = SCHEMES.get(parts.scheme)
        if broker_scheme is None:
            raise ConfigError(
                f"bad VDA 5050 link URL {url!r}: scheme must be one of {sorted(SCHEMES)}", url=url
            )
        levels = [p for p in parts.path.split("/") if p]
        if len(levels) > 2:
            raise ConfigError(
                f"bad VDA 5050 link URL {url!r}: path is /manufacturer[/serialNumber]", url=url
            )
        manufacturer = _level(levels[0], url) if levels else None
        serial = _level(levels[1], url) if len(levels) > 1 else None
        if manufacturer is None and serial is not None:
            raise ConfigError(f"bad VDA 5050 link URL {url!r}: serial needs a manufacturer")
        query = parse_qs(parts.query)
        broker_query = {k: v[0] for k, v in query.items() if k in ("ca", "insecure")}
        broker_url = None
        if parts.hostname:
            q = "&".join(f"{k}={quote(v)}" for k, v in broker_query.items())
            broker_url = urlunsplit((broker_scheme, parts.netloc, "", q, ""))
        timeout = query.get("state_timeout", [None])[0]
        try:
            state_timeout = float(timeout) if timeout is not None else None
        except ValueError:
            raise ConfigError(f"bad VDA 5050 link URL {url!r}: state_timeout is seconds") from None
        if state_timeout is not None and not state_timeout > 0:
            raise ConfigError(f"bad VDA 5050 link URL {url!r}: state_timeout must be > 0")
        prefix = query.get("prefix", [""])[0].strip("/")
        if any(c in prefix for c in "#+$"):
            raise ConfigError(f"bad VDA 5050 link URL {url!r}: prefix must not hold # + $")
        interface = query.get("interface", [wire.DEFAULT_INTERFACE])[0]
        if not interface or any(c in _FORBIDDEN | {"+"} for c in interface):
            raise ConfigError(f"bad VDA 5050 link URL {url!r}: bad interface name {interface!r}")
        netloc = parts.hostname or ""
        if parts.username:
            netloc = f"{parts.username}@{netloc}"
        if port:
            netloc = f"{netloc}:{port}"
        display = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
        return cls(
            broker_url=broker_url,
            manufacturer=manufacturer,
            serial_number=serial,
            prefix=prefix,
            interface=interface,
            state_timeout_s=state_timeout,
            visualization=query.get("visualization", ["1"])[0] not in {"0", "false", "no"},
            display_url=display,
        )

    def covers(self, manufacturer: str, serial: str) -> bool:
        """Whether a van belongs to this link."""
        return (self.manufacturer is None or self.manufacturer == manufacturer) and (
            self.serial_number is None or self.serial_number == serial
        )

    def topic(self, manufacturer: str, serial: str, subtopic: str) -> str:
        return wire.topic(self.prefix, self.interface, manufacturer, serial, subtopic)

    def subscriptions(self) -> list[tuple[str, int]]:
        """Topic filters and QoS the master control subscribes to."""
        m = self.manufacturer or "+"
        s = self.serial_number or "+"
        subtopics = ["state", "connection", "factsheet"]
        if self.visualization:
            subtopics.append("visualization")
        return [(self.topic(m, s, t), wire.QOS[t]) for t in subtopics]

    def split(self, name: str) -> tuple[str, str, str] | None:
        """``(manufacturer, serial, subtopic)`` of a topic of this link, or None."""
        return wire.split_topic(self.prefix, self.interface, name)


def _level(value: str, url: str) -> str | None:
    if value == "+":
        return None
    if any(c in _FORBIDDEN | {"+"} for c in value):
        raise ConfigError(f"bad VDA 5050 link URL {url!r}: {value!r} is not a topic level")
    return value
