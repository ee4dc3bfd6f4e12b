"""Typed settings, built once by the app factory and never read at import.

Sources, highest priority first:

1. values passed to :meth:`Settings.load` (CLI flags, tests);
2. environment variables with prefix ``STREETFLEET_`` and ``__`` between nested names,
   e.g. ``STREETFLEET_DATABASE__URL=postgresql://...``, ``STREETFLEET_CLOCK__SPEED=10``;
   lists and tables as JSON, e.g. ``STREETFLEET_MAVLINK__LINKS='["mavlink+udpin://..."]'``;
3. a TOML config file named by ``config_file`` or ``STREETFLEET_CONFIG`` (sections as tables,
   see ``docs/configuration.md``);
4. the defaults below, which run the service with no external dependency.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from fleet.errors import ConfigError

ENV_PREFIX = "STREETFLEET_"
"""Prefix of every environment variable the service reads."""
CONFIG_ENV = "STREETFLEET_CONFIG"
"""Environment variable naming the TOML config file."""


class _Section(BaseModel):
    model_config = {"extra": "forbid", "validate_assignment": True}


class ServiceSettings(_Section):
    """The HTTP service."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    public_url: str | None = None
    """URL vehicles and users reach the service at (clips for speakers); default from host/port."""
    environment: Literal["production", "development"] = "production"
    """``development`` (what ``streetfleet demo`` runs) creates a demo account per role and
    allows a generated token secret; ``production`` refuses to start without a real one."""


class AuthSettings(_Section):
    """Accounts and tokens (``docs/api.md#accounts-and-roles``)."""

    secret: SecretStr | None = None
    """Key that signs access and refresh tokens (HS256): at least 32 characters, from a secret
    store (``STREETFLEET_AUTH__SECRET``). Unset: refused outside development mode; in
    development mode one is generated at start (tokens do not survive a restart)."""
    access_token_ttl_s: float = Field(900.0, ge=30, le=86_400)
    """Lifetime of an access token (short: a disabled account loses access within it)."""
    refresh_token_ttl_s: float = Field(43_200.0, ge=60, le=30 * 86_400)
    """Lifetime of a refresh token (a shift); each refresh checks the account again."""
    demo_accounts: bool = True
    """In development mode, create (or reset) one account per role at start and print their
    credentials, with fresh random passwords."""
    principal_cache_s: float = Field(5.0, ge=0, le=300)
    """Seconds an account read from the store serves requests before it is read again (a
    disabled account or revoked key stops working within this)."""


class DatabaseSettings(_Section):
    """The record: SQLite file by default, PostgreSQL by URL."""

    url: str = "sqlite:///var/streetfleet.db"
    """SQLAlchemy-style URL: ``sqlite:///path`` or ``postgresql://user@host:5432/db``."""
    db_schema: str | None = Field(None, alias="schema")
    """PostgreSQL schema to use (created if missing); None for the default search path."""
    migrate_on_start: bool = True
    """Apply Alembic migrations when the service starts."""
    echo: bool = False

    model_config = {"extra": "forbid", "validate_assignment": True, "populate_by_name": True}


class WorldSettings(_Section):
    """The operating area."""

    path: Path = Path("examples/worlds/shatou.geojson")
    """World file (GeoJSON, see ``docs/world-format.md``)."""


class ClockSettings(_Section):
    """World time (see :mod:`fleet.clock`)."""

    mode: Literal["wall", "accelerated", "manual"] = "wall"
    speed: float = Field(1.0, gt=0, le=1000)
    """World seconds per real second in ``accelerated`` mode."""


class MavlinkSettings(_Section):
    """The MAVLink bridge."""

    links: list[str] = Field(default_factory=list)
    """Link URLs, e.g. ``mavlink+udpin://127.0.0.1:14540``; one UDP endpoint each."""
    system_id: int = Field(255, ge=1, le=255)
    """Our ground-station system id."""
    component_id: int = Field(190, ge=1, le=255)
    """Our component id (MAV_COMP_ID_MISSIONPLANNER)."""
    heartbeat_interval_s: float = Field(1.0, gt=0)
    link_timeout_s: float = Field(3.0, gt=0)
    """A vehicle silent this long is marked lost."""
    command_timeout_s: float = Field(1.5, gt=0)
    """Wait for COMMAND_ACK this long before a retry."""
    command_retries: int = Field(3, ge=0)
    mission_timeout_s: float = Field(1.5, gt=0)
    """Wait for each mission protocol answer this long before a retry."""
    mission_retries: int = Field(5, ge=0)
    position_timeout_s: float = Field(3.0, gt=0)
    """A vehicle's global position older than this does not count for its readiness."""
    mission_verdict_timeout_s: float = Field(15.0, gt=0)
    """Longest wait after an upload for the vehicle's verdict on the plan (PX4 checks a plan
    only once it has a home and a global position)."""
    rcvbuf_bytes: int = Field(8 * 1024 * 1024, ge=65536)
    """Requested SO_RCVBUF of each UDP endpoint."""
    signing_key: str | None = None
    """Hex-encoded 32-byte MAVLink 2 signing key; unset means unsigned."""
    metadata_cache_dir: Path | None = Path("var/mavlink-metadata")
    """Cache of the component metadata (event definitions) downloaded from vehicles, by
    firmware version and CRC; None keeps it in memory only."""
    metadata_timeout_s: float = Field(60.0, gt=0)
    """Longest metadata download of one vehicle; the built-in event table serves until then."""

    @field_validator("metadata_cache_dir", mode="before")
    @classmethod
    def _no_cache_when_empty(cls, v: Any) -> Any:
        return None if v is None or str(v).strip() == "" else v


class MqttSettings(_Section):
    """The MQTT broker for vans and speaker payloads."""

    url: str | None = None
    """``mqtt://host:1883`` (``mqtts://`` for TLS); None starts an embedded broker (loopback)."""
    embedded_port: int = Field(0, ge=0, le=65535)
    """Port of the embedded broker when ``url`` is unset; 0 picks a free one (the log says
    which). Set it when vehicles outside the process must reach the embedded broker."""

    @field_validator("url")
    @classmethod
    def _mqtt_scheme(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("mqtt://", "mqtts://")):
            raise ValueError("must start with mqtt:// or mqtts://")
        return v


class VanLimitsSettings(_Section):
    """What the service assumes of a van for each figure its factsheet does not state (or
    without a factsheet at all): conservative by default, set per vehicle by the operator
    (``vda5050.vehicles``)."""

    max_kg: float | None = Field(None, gt=0)
    """Payload per trip, kg (None: the section's default)."""
    max_boxes: int | None = Field(None, ge=1)
    """Standard boxes per trip."""
    max_loads: int | None = Field(None, ge=1)
    """Consignments (picks) per trip."""
    speed_max_mps: float | None = Field(None, gt=0)
    """Top speed for planning."""
    length_m: float | None = Field(None, gt=0)
    width_m: float | None = Field(None, gt=0)
    height_m: float | None = Field(None, gt=0)


class SiteHandlingSettings(_Section):
    """Pick and drop parameters of one warehouse dock or community gate, and its clearance."""

    load_type: str | None = None
    """``loadType`` of the loads picked or dropped here (default: ``vda5050.load_type``)."""
    station_type: str | None = None
    """``stationType`` here (default: ``vda5050.pick_station_type`` at a warehouse,
    ``drop_station_type`` at a gate)."""
    station_name: str | None = None
    """``stationName`` sent with pick and drop here (none by default)."""
    max_vehicle_length_m: float | None = Field(None, gt=0)
    """Longest vehicle the site takes."""
    max_vehicle_width_m: float | None = Field(None, gt=0)
    max_vehicle_height_m: float | None = Field(None, gt=0)


class Vda5050Settings(_Section):
    """Vans over VDA 5050 (``docs/protocols/vda5050.md``, "Vendor-facing settings")."""

    links: list[str] = Field(default_factory=lambda: ["vda5050+mqtt:///"])
    """Link URLs; ``vda5050+mqtt:///`` finds every van on the service's broker
    (``mqtt.url`` or the embedded one). Empty: no vans."""
    max_boxes: int = Field(20, ge=1)
    """Box capacity assumed for a van whose factsheet and vehicle settings do not say."""
    max_kg: float = Field(100.0, gt=0)
    """Payload assumed for a van whose factsheet and vehicle settings do not say."""
    max_loads: int = Field(1, ge=1)
    """Consignments per trip assumed for a van whose factsheet and vehicle settings do not say
    (a factsheet says it with load positions, or with streetfleet's ``maxBoxes``)."""
    speed_max_mps: float = Field(1.0, gt=0)
    """Top speed assumed (for planning) for a van without a factsheet."""
    vehicles: dict[str, VanLimitsSettings] = Field(default_factory=dict)
    """Per-vehicle figures (by vehicle id ``van-<serialNumber>``) for what its factsheet does
    not state."""
    load_type: str = "BOX"
    """``loadType`` of pick and drop."""
    pick_station_type: str = "dock"
    """``stationType`` of a pick at a warehouse."""
    drop_station_type: str = "gate"
    """``stationType`` of a drop at a community gate (and of unloading at the dock)."""
    sites: dict[str, SiteHandlingSettings] = Field(default_factory=dict)
    """Per warehouse or community id: its own load type, station type and name, clearance."""
    state_timeout_s: float | None = Field(None, gt=0)
    """A van heard from by no message for this long is UNKNOWN (default: 45 s, or three state
    intervals of its factsheet)."""


class DroneMissionSettings(_Section):
    """How drone delivery missions are flown."""

    cruise_alt_m: float = Field(40.0, gt=5, le=120)
    """Cruise altitude above the take-off pad (China's light-UAV ceiling is 120 m)."""
    drop_alt_m: float = Field(8.0, gt=1, le=50)
    """Altitude above the drop point at which the gripper opens."""
    drop_hold_s: float = Field(4.0, ge=0, le=60)
    """Time held at the drop waypoint after the gripper command (PX4 does not block on it)."""
    payload_kg: float = Field(2.5, gt=0)
    """Payload limit of a delivery drone."""
    reserve_fraction: float = Field(0.25, ge=0, lt=1)
    """Battery that must remain on landing."""
    no_fly_margin_m: float = Field(20.0, ge=0)
    """Lateral clearance kept from no-fly zones when routing around them."""
    max_flight_s: float = Field(1800.0, gt=0)
    """A mission not done after this long is failed and the drone told to return."""


class SafetySettings(_Section):
    """Flight safety (``docs/safety.md``): the failsafe policy set on every drone before each
    flight, the in-flight energy check, the lost-link policy and strategic deconfliction."""

    nav_dll_act: int = Field(2, ge=0, le=6)
    """PX4 NAV_DLL_ACT: what the drone does when it loses the ground station (2: return)."""
    dl_loss_t_s: float = Field(10.0, ge=5, le=300)
    """PX4 COM_DL_LOSS_T: seconds without a ground-station heartbeat before that action."""
    low_bat_act: int = Field(3, ge=0, le=3)
    """PX4 COM_LOW_BAT_ACT (3: return at critical, land at emergency)."""
    bat_low_thr: float = Field(0.2, ge=0.12, le=0.5)
    """PX4 BAT_LOW_THR: warning level."""
    bat_crit_thr: float = Field(0.12, ge=0.05, le=0.5)
    """PX4 BAT_CRIT_THR: the drone returns by itself below this."""
    bat_emergen_thr: float = Field(0.07, ge=0.03, le=0.5)
    """PX4 BAT_EMERGEN_THR: the drone lands where it is below this."""
    rtl_return_alt_m: float | None = Field(None, ge=5, le=150)
    """PX4 RTL_RETURN_ALT (None: ``drone_missions.cruise_alt_m``, capped by the world's ceiling)."""
    gf_action: int = Field(3, ge=1, le=5)
    """PX4 GF_ACTION on a geofence breach (3: return)."""
    rally_points: bool = True
    """Upload the world's pads as rally points (safe landing places) and check them."""
    energy_check: bool = True
    """Recall a drone in flight whose battery is below what the rest of its mission needs plus
    the reserve."""
    lost_link_timeout_s: float | None = Field(None, gt=0)
    """World seconds a drone may stay unheard before its mission's work goes to another
    vehicle (None: as long as its last reported battery could keep it in the air, plus
    :attr:`lost_link_margin_s`)."""
    lost_link_margin_s: float = Field(60.0, ge=0)
    """Added to the computed lost-link timeout."""
    separation_h_m: float = Field(30.0, ge=0)
    """Strategic deconfliction: horizontal separation between two drones' reserved paths..."""
    separation_v_m: float = Field(15.0, ge=0)
    """...unless their altitude bands are at least this far apart."""
    track_error_m: float = Field(2.0, ge=0)
    """How far a drone may stray sideways from its planned line; two reserved lines are kept
    ``separation_h_m`` plus twice this apart, so the separation holds between the drones."""
    altitude_error_m: float = Field(1.0, ge=0)
    """How far a drone may stray from its planned altitude (two layers 15 m apart were seen
    14.98 m apart in flight); reserved bands, and the layers offered, are kept
    ``separation_v_m`` plus twice this apart."""
    reservation_margin_s: float = Field(10.0, ge=0)
    """Time margin added before and after every reserved segment."""
    reservation_slack: float = Field(0.1, ge=0, le=0.9)
    """Share of the elapsed planned flight time added to the margins on both sides (estimates
    drift: PX4 SITL flew a 597 s plan in 617 s, the sim flies descents faster than planned)."""
    start_slack_s: float = Field(15.0, ge=0)
    """A reserved start may slip this long (upload, arming) and the reservation still holds."""
    max_start_delay_s: float = Field(1800.0, ge=0)
    """Longest delay of a take-off the deconfliction may impose; beyond it the flight waits."""
    deconfliction: bool = True
    """Reserve a 4D volume for every drone flight and keep flights out of each other's."""


class SpeakerModelSettings(_Section):
    """The loudspeaker and the listening conditions broadcasts are planned for
    (``docs/broadcast.md``, "How far a speaker is heard")."""

    source_level_db: float = Field(120.0, ge=60, le=150)
    """dB SPL at 1 m on the horn axis at full volume (the payload's data sheet)."""
    background_db: float = Field(55.0, ge=0, le=120)
    """Ambient noise on the ground, dB(A)."""
    snr_db: float = Field(15.0, ge=0, le=40)
    """Speech-to-noise margin needed (NFPA 72: 15 dB above the ambient level)."""
    min_level_db: float = Field(65.0, ge=0, le=120)
    """The required level never goes below this."""
    excess_attenuation_db: float = Field(10.0, ge=0, le=60)
    """Flat margin for buildings, ground effect, wind and horn directivity."""
    temperature_c: float = Field(20.0, ge=-20, le=50)
    relative_humidity: float = Field(70.0, ge=10, le=100)
    """Percent (ISO 9613-1 absorption)."""


class BroadcastSettings(_Section):
    """Loudspeaker broadcasts: speaker links, clips, the speaker model and the planner."""

    speaker_links: list[str] = Field(default_factory=lambda: ["speaker+mqtt:///"])
    """Speaker payload link URLs; ``speaker+mqtt:///`` finds every payload on the service's
    broker (``mqtt.url`` or the embedded one). Empty: no loudspeaker payloads."""
    clip_dir: Path = Path("var/clips")
    """Where audio clips (uploaded and spoken) are stored, by SHA-256."""
    espeak_executable: str = "espeak-ng"
    """The text-to-speech engine (Debian package ``espeak-ng``)."""
    altitude_m: float = Field(60.0, ge=5, le=120)
    """Flight altitude above the take-off pad (China's light-UAV ceiling is 120 m)."""
    pause_s: float = Field(2.0, ge=0, le=60)
    """Silence between two plays when a request gives no period."""
    target_coverage: float = Field(0.95, gt=0, le=1)
    """Share of the area that must hear the message the requested number of times (predicted
    before flight; a plan below it is refused)."""
    max_flight_s: float = Field(1500.0, gt=60)
    """Longest flight of one drone, take-off to landing; less when its battery says so."""
    reserve_fraction: float = Field(0.25, ge=0, lt=1)
    """Battery that must remain on landing."""
    speaker_payload_kg: float = Field(1.0, ge=0, le=10)
    """Mass of the loudspeaker payload, for the energy model (``fleet.energy``)."""
    no_fly_margin_m: float = Field(20.0, ge=0)
    """Lateral clearance kept from no-fly zones."""
    boundary_margin_m: float = Field(3.0, ge=0, le=50)
    """Lanes stay this far inside the area so the payload does not flicker at its edge."""
    lead_s: float = Field(120.0, ge=0, le=3600)
    """A scheduled broadcast is dispatched this long before its time (take-off and transit)."""
    max_delay_s: float = Field(1800.0, gt=0)
    """A scheduled occurrence not flown this long after its time is recorded as missed."""
    max_attempts: int = Field(3, ge=1, le=10)
    """Flights of one occurrence tried before it is recorded as failed."""
    max_sorties: int = Field(4, ge=1, le=20)
    """Flights one drone may make for one occurrence: an area the free drones cannot cover in
    one battery each is flown in several sorties, the drone landing on its pad for a battery
    swap in between (``docs/safety.md``); 1: never."""
    sortie_wait_s: float = Field(1800.0, gt=0)
    """World seconds a later sortie waits for its drone to be back on its pad with a battery
    that can fly it (after the swap) before it fails and the occurrence is flown again."""
    speaker: SpeakerModelSettings = Field(default_factory=SpeakerModelSettings)


class RequestSettings(_Section):
    """How requests are accepted."""

    auto_approve: bool = True
    """Approve every valid request on arrival; False leaves approval to an operator."""
    deadline_h: float = Field(5.0, gt=0, le=72)
    """Default time from approval to delivery (the warehouse-to-door target)."""
    max_lines: int = Field(50, ge=1)
    """Most SKU lines in one delivery request."""
    max_units_per_line: int = Field(1_000_000, ge=1)


class ShuttleSettings(_Section):
    """Van shuttles: shift hours, trip building and re-planning (``docs/shuttles.md``)."""

    timezone: str = "Asia/Shanghai"
    """IANA time zone of shuttle plan hours when a plan does not name its own."""
    routing_time_limit_s: float = Field(1.0, gt=0, le=60)
    """Real seconds the route optimiser may spend on one plan."""
    replan_interval_s: float = Field(300.0, gt=0)
    """World seconds between re-plans for an idle van when the pending work did not change."""
    link_lost_grace_s: float = Field(600.0, gt=0)
    """World seconds a van on a trip may stay unheard (broker restart, radio shadow) before its
    undelivered stops are planned again onto other vans (at least 10 real seconds)."""
    trip_timeout_s: float = Field(4 * 3600.0, gt=0)
    """World seconds after which a trip that has not ended is given up."""
    charge_below: float = Field(0.3, ge=0, le=1)
    """An idle van at the dock below this battery fraction charges before its next trip."""
    charge_until: float = Field(0.8, gt=0, le=1)
    """A charging van takes trips again from this battery fraction on."""
    range_reserve_fraction: float = Field(0.1, ge=0, lt=1)
    """Share of the van's remaining range a trip may not use."""
    dock_fixed_s: float = Field(120.0, ge=0)
    """Planning: docking and checks at the warehouse per trip, before loading."""
    stop_fixed_s: float = Field(180.0, ge=0)
    """Planning: per community served on a trip (its pick at the dock and its drop at the
    gate each take a fixed handling time on the van)."""
    load_per_box_s: float = Field(8.0, gt=0)
    """Planning: loading one box, when the van's factsheet does not say."""
    unload_per_box_s: float = Field(6.0, gt=0)
    """Planning: unloading one box, when the van's factsheet does not say."""
    max_speed_kmh: float = Field(30.0, gt=0, le=130)
    """Speed cap for routes (city rules for unmanned vans)."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {v!r} (use an IANA name such as Asia/Shanghai)"
            ) from None
        return v


class CommandSettings(_Section):
    """Operators' commands to vehicles (``docs/api.md``, "Vehicle commands")."""

    state_timeout_s: float = Field(30.0, gt=0)
    """World seconds from sending a command until the vehicle must be seen in the commanded
    state (mode, paused, order gone); later, the command ends ``timed_out``."""


class SimSettings(_Section):
    """The simulated fleet started by ``streetfleet demo``."""

    drones: int = Field(3, ge=0, le=1000)
    vans: int = Field(1, ge=0, le=100)
    first_port: int = Field(14540, ge=1024, le=65535)
    """Sim drone i sends to UDP first_port + i (PX4 SITL convention)."""


class LoggingSettings(_Section):
    """Structured logging."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    json_output: bool = Field(False, alias="json")
    """One JSON object per line instead of console formatting."""

    model_config = {"extra": "forbid", "validate_assignment": True, "populate_by_name": True}


class Settings(BaseSettings):
    """Every setting of the service, in sections."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    service: ServiceSettings = Field(default_factory=ServiceSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    world: WorldSettings = Field(default_factory=WorldSettings)
    clock: ClockSettings = Field(default_factory=ClockSettings)
    mavlink: MavlinkSettings = Field(default_factory=MavlinkSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    vda5050: Vda5050Settings = Field(default_factory=Vda5050Settings)
    drone_missions: DroneMissionSettings = Field(default_factory=DroneMissionSettings)
    broadcast: BroadcastSettings = Field(default_factory=BroadcastSettings)
    safety: SafetySettings = Field(default_factory=SafetySettings)
    requests: RequestSettings = Field(default_factory=RequestSettings)
    shuttle: ShuttleSettings = Field(default_factory=ShuttleSettings)
    commands: CommandSettings = Field(default_factory=CommandSettings)
    sim: SimSettings = Field(default_factory=SimSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)

    @field_validator("broadcast")
    @classmethod
    def _speaker_links_are_urls(cls, v: BroadcastSettings) -> BroadcastSettings:
        for url in v.speaker_links:
            if not url.startswith(("speaker+mqtt://", "speaker+mqtts://")):
                raise ValueError(
                    f"speaker link {url!r} is not a speaker+mqtt:// or speaker+mqtts:// URL"
                )
        return v

    @field_validator("mavlink")
    @classmethod
    def _links_are_urls(cls, v: MavlinkSettings) -> MavlinkSettings:
        for url in v.links:
            if "://" not in url:
                raise ValueError(
                    f"link {url!r} is not a URL (e.g. mavlink+udpin://127.0.0.1:14540)"
                )
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if settings_cls.model_config.get("toml_file"):
            sources.append(TomlConfigSettingsSource(settings_cls))
        return tuple(sources)

    @classmethod
    def load(cls, config_file: str | Path | None = None, **overrides: Any) -> Settings:
        """Build settings from overrides, environment, TOML file and defaults.

        Raises :class:`ConfigError` naming the setting and the reason.
        """
        path = config_file or os.environ.get(CONFIG_ENV)
        target: type[Settings] = cls
        if path:
            if not Path(path).is_file():
                raise ConfigError(f"config file {path} does not exist", path=str(path))
            config = SettingsConfigDict(**{**cls.model_config, "toml_file": Path(path)})
            target = type(cls.__name__, (cls,), {"model_config": config, "__module__": __name__})
        try:
            return target(**overrides)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"config file {path} is not valid TOML: {exc}", path=str(path)
            ) from exc
        except PydanticValidationError as exc:
            raise ConfigError(_describe(exc), errors=exc.errors(include_url=False)) from exc

    def dump(self) -> dict[str, Any]:
        """Settings as plain data (secrets masked) for logs and ``streetfleet config``."""
        data = self.model_dump(mode="json", by_alias=True)
        if data["mavlink"].get("signing_key"):
            data["mavlink"]["signing_key"] = "***"
        return data


def _describe(exc: PydanticValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "settings"
        parts.append(f"{loc}: {err['msg']}")
    return "invalid settings: " + "; ".join(parts)
