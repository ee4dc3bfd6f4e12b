"""Options of a MAVLink link, read from ``LinkContext.options``.

The composition root passes the ``mavlink`` section of :mod:`fleet.settings` as a dict, plus
two optional keys: ``vehicle_names`` ({system id: vehicle id}) and ``payload_kg``. Missing keys
take the same defaults as the settings; bad values raise ``ConfigError`` naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fleet.errors import ConfigError


@dataclass(frozen=True, slots=True)
class MavlinkOptions:
    """Everything a MAVLink link needs to know besides its URL."""

    system_id: int = 255
    """Our (ground station) system id."""
    component_id: int = 190
    """Our component id (MAV_COMP_ID_MISSIONPLANNER)."""
    heartbeat_interval_s: float = 1.0
    """Period of our GCS HEARTBEAT."""
    link_timeout_s: float = 3.0
    """A vehicle whose HEARTBEATs stop this long is LINK_LOST."""
    command_timeout_s: float = 1.5
    """Wait for a COMMAND_ACK (or PARAM_VALUE) this long before resending."""
    command_retries: int = 3
    """Resends of a command after the first attempt."""
    mission_timeout_s: float = 1.5
    """Wait for each mission-protocol answer this long before resending."""
    mission_retries: int = 5
    """Resends of one mission-protocol step."""
    position_timeout_s: float = 3.0
    """A global position estimate older than this (world s) does not count for readiness."""
    mission_verdict_timeout_s: float = 15.0
    """Longest wait (world s) after an upload for the vehicle's verdict on the plan."""
    rcvbuf_bytes: int = 8 * 1024 * 1024
    """Requested SO_RCVBUF of the UDP socket."""
    signing_key: str | None = None
    """Hex MAVLink 2 signing key; None for unsigned links."""
    vehicle_names: dict[int, str] = field(default_factory=dict)
    """Vehicle id to use for a system id instead of ``drone-{sysid}``/``rover-{sysid}``."""
    payload_kg: float = 0.0
    """Payload limit recorded in each discovered vehicle's info."""
    metadata_cache_dir: str | None = "var/mavlink-metadata"
    """Where downloaded component metadata (event definitions) is kept, by firmware version
    and CRC; None or empty: in memory only (see ``metadata.py``)."""
    metadata_timeout_s: float = 60.0
    """Longest metadata fetch of one vehicle (world s); then the built-in fallback stays."""

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> MavlinkOptions:
        known = set(cls.__dataclass_fields__)
        values: dict[str, Any] = {}
        for key, value in options.items():
            if key not in known:
                continue  # other settings of the section (e.g. links) are not ours
            values[key] = value
        try:
            opts = cls(**values)
            opts._validate()
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad mavlink link option: {exc}") from exc
        return opts

    def _validate(self) -> None:
        if not 1 <= int(self.system_id) <= 255 or not 1 <= int(self.component_id) <= 255:
            raise ValueError("system_id and component_id must be 1..255")
        for name in (
            "heartbeat_interval_s",
            "link_timeout_s",
            "command_timeout_s",
            "mission_timeout_s",
            "metadata_timeout_s",
            "position_timeout_s",
            "mission_verdict_timeout_s",
        ):
            if float(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be positive")
        if int(self.command_retries) < 0 or int(self.mission_retries) < 0:
            raise ValueError("retries must not be negative")
        if self.metadata_cache_dir is not None:
            object.__setattr__(self, "metadata_cache_dir", str(self.metadata_cache_dir) or None)
        names = {}
        for sysid, vid in dict(self.vehicle_names).items():
            names[int(sysid)] = str(vid)
        object.__setattr__(self, "vehicle_names", names)
