"""Settings: environment over TOML over defaults, clear errors naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.errors import ConfigError
from fleet.settings import Settings


def test_defaults_need_no_external_service(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(__import__("os").environ):
        if key.startswith("STREETFLEET_"):
            monkeypatch.delenv(key)
    s = Settings.load()
    assert s.database.url.startswith("sqlite:///")
    assert s.mqtt.url is None
    assert s.clock.mode == "wall"


def test_env_overrides_toml_which_overrides_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "sf.toml"
    cfg.write_text('[service]\nport = 9000\nhost = "0.0.0.0"\n[clock]\nspeed = 4\n')
    monkeypatch.setenv("STREETFLEET_SERVICE__PORT", "8000")  # same as the default, still wins
    s = Settings.load(cfg)
    assert s.service.port == 8000
    assert s.service.host == "0.0.0.0"
    assert s.clock.speed == 4
    monkeypatch.setenv("STREETFLEET_CONFIG", str(cfg))
    assert Settings.load().service.host == "0.0.0.0"


def test_nested_env_and_json_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREETFLEET_DATABASE__URL", "postgresql://u@db:5432/fleet")
    monkeypatch.setenv("STREETFLEET_MAVLINK__LINKS", '["mavlink+udpin://127.0.0.1:14540"]')
    s = Settings.load()
    assert s.database.url == "postgresql://u@db:5432/fleet"
    assert s.mavlink.links == ["mavlink+udpin://127.0.0.1:14540"]


@pytest.mark.parametrize(
    ("env", "value", "names"),
    [
        ("STREETFLEET_CLOCK__SPEED", "-1", "clock.speed"),
        ("STREETFLEET_SERVICE__PORT", "http", "service.port"),
        ("STREETFLEET_MAVLINK__LINKS", '["14540"]', "mavlink"),
    ],
)
def test_bad_values_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, names: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=names):
        Settings.load()


def test_bad_config_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[service\nport=1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Settings.load(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[servce]\nport = 1\n")
    with pytest.raises(ConfigError, match="servce"):
        Settings.load(unknown)


def test_dump_masks_the_signing_key() -> None:
    s = Settings.load(mavlink={"signing_key": "00" * 32})
    assert s.dump()["mavlink"]["signing_key"] == "***"
