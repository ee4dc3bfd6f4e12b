"""Speaker link URLs: which broker, which payloads, which topic namespace.

Forms (``speaker+mqtts://`` for TLS; credentials and ``ca``/``insecure`` as in
:mod:`fleet.mqtt`)::

    speaker+mqtt://host:1883/SPK-01     one payload: speaker/v1/SPK-01/...
    speaker+mqtt://host:1883/           every payload on the broker: speaker/v1/+/...
    speaker+mqtt:///SPK-01              the service's own broker (settings ``mqtt.url`` or the
                                        embedded broker), passed as option broker_url

Query parameters: ``ns=site-a/speaker`` sets the topic namespace before ``v1`` (default
``speaker``); ``vehicle=drone-1`` names the drone carrying the payload (one-payload form only;
overrides the payload's own ``info.host_vehicle``); ``state_timeout=5`` (seconds without a state
message before the payload counts as lost) and ``command_timeout=10`` (seconds to wait for a
reply; clip loads get ``clip_timeout``, default 60).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

from firmware_bridges.speaker import wire
from fleet.errors import ConfigError

SCHEMES = {"speaker+mqtt": "mqtt", "speaker+mqtts": "mqtts"}
"""Link schemes and the broker scheme each uses."""


@dataclass(frozen=True, slots=True)
class SpeakerAddress:
    """A parsed speaker link URL."""

    broker_url: str | None
    """``mqtt[s]://[user:pass@]host:port[?ca=..]``; None: the service's broker."""
    payload_id: str | None
    """None: every payload under the namespace."""
    namespace: str = wire.DEFAULT_NAMESPACE
    host_vehicle: str | None = None
    state_timeout_s: float | None = None
    command_timeout_s: float | None = None
    clip_timeout_s: float | None = None
    display_url: str = ""
    """The URL without password (logs, ``VehicleInfo.link_url``)."""

    @classmethod
    def parse(cls, url: str) -> SpeakerAddress:
        def bad(why: str) -> ConfigError:
            return ConfigError(f"bad speaker link URL {url!r}: {why}", url=url)

        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise bad(str(exc)) from exc
        broker_scheme = SCHEMES.get(parts.scheme)
        if broker_scheme is None:
            raise bad(f"scheme must be one of {sorted(SCHEMES)}")
        if parts.fragment:
            raise bad("a link URL has no #fragment (payload ids hold no '#')")
        levels = [p for p in parts.path.split("/") if p]
        if len(levels) > 1:
            raise bad("path is /payload_id, or / for every payload")
        payload_id = levels[0] if levels else None
        if payload_id == "+":
            payload_id = None
        if payload_id is not None and not wire.PAYLOAD_ID_RE.match(payload_id):
            raise bad(f"payload id {payload_id!r} may hold only letters, digits and _ . -")
        query = parse_qs(parts.query)

        def seconds(name: str) -> float | None:
            raw = query.get(name, [None])[0]
            if raw is None:
                return None
            try:
                value = float(raw)
            except ValueError:
                raise bad(f"{name} is seconds") from None
            if not value > 0:
                raise bad(f"{name} must be > 0")
            return value

        try:
            namespace = wire.check_namespace(query.get("ns", [wire.DEFAULT_NAMESPACE])[0])
        except ValueError as exc:
            raise bad(str(exc)) from None
        host = query.get("vehicle", [None])[0]
        if host is not None and payload_id is None:
            raise bad("vehicle= needs a single payload in the path")
        broker_url = None
        if parts.hostname:
            broker_query = {k: v[0] for k, v in query.items() if k in ("ca", "insecure")}
            q = "&".join(f"{k}={quote(v)}" for k, v in broker_query.items())
            broker_url = urlunsplit((broker_scheme, parts.netloc, "", q, ""))
        netloc = parts.hostname or ""
        if parts.username:
            netloc = f"{parts.username}@{netloc}"
        if port:
            netloc = f"{netloc}:{port}"
        return cls(
            broker_url=broker_url,
            payload_id=payload_id,
            namespace=namespace,
            host_vehicle=host,
            state_timeout_s=seconds("state_timeout"),
            command_timeout_s=seconds("command_timeout"),
            clip_timeout_s=seconds("clip_timeout"),
            display_url=urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")),
        )

    def covers(self, payload_id: str) -> bool:
        return self.payload_id is None or self.payload_id == payload_id

    def topic(self, payload_id: str, channel: wire.Channel) -> str:
        return wire.topic(self.namespace, payload_id, channel)

    def subscriptions(self) -> list[tuple[str, int]]:
        """Topic filters and QoS the service subscribes to."""
        pid = self.payload_id or "+"
        return [
            (wire.topic(self.namespace, pid, ch), 0 if ch is wire.Channel.STATE else 1)
            for ch in (
                wire.Channel.INFO,
                wire.Channel.CONNECTION,
                wire.Channel.STATE,
                wire.Channel.REPLY,
                wire.Channel.PLAYBACK,
                wire.Channel.EVENT,
            )
        ]


def link_url(broker_url: str, payload_id: str | None = None, **query: str) -> str:
    """Build a link URL from a broker URL (``mqtt[s]://...``), e.g. for tests and settings."""
    parts = urlsplit(broker_url)
    scheme = {"mqtt": "speaker+mqtt", "mqtts": "speaker+mqtts"}.get(parts.scheme)
    if scheme is None:
        raise ConfigError(f"bad MQTT URL {broker_url!r}", url=broker_url)
    q = "&".join(f"{k}={quote(v, safe='/')}" for k, v in query.items())
    return urlunsplit((scheme, parts.netloc, f"/{payload_id or ''}", q, ""))
