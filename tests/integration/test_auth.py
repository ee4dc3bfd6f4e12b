"""Accounts over real HTTP: the OAuth2 password and refresh grants, expired and forged tokens,
disabled accounts, API keys, the secret the service refuses, and ``streetfleet users``."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from api.app import create_app
from fleet.errors import ConfigError
from tests.service import running_service, service_settings

PASSWORD = "correct horse battery staple"


@pytest.fixture
async def svc(tmp_path: Path) -> Any:
    settings = service_settings(tmp_path, auth={"principal_cache_s": 0})
    async with running_service(settings) as s:
        r = await s.http.post(
            "/v1/users", json={"username": "ops-li", "role": "operator", "password": PASSWORD}
        )
        assert r.status_code == 201, r.text
        assert r.json()["password"] is None  # given, so not echoed
        yield s


async def _sign_in(url: str, username: str, password: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url) as c:
        return await c.post("/v1/auth/token", data={"username": username, "password": password})


async def test_password_grant_refresh_and_me(svc: Any) -> None:
    r = await _sign_in(svc.url, "ops-li", PASSWORD)
    assert r.status_code == 200, r.text
    tok = r.json()
    assert tok["token_type"] == "bearer" and tok["expires_in"] == 900
    assert tok["role"] == "operator" and r.headers["cache-control"] == "no-store"
    async with httpx.AsyncClient(base_url=svc.url) as c:
        me = await c.get("/v1/auth/me", headers={"Authorization": f"Bearer {tok['access_token']}"})
        assert me.json() == {
            "username": "ops-li",
            "role": "operator",
            "communities": [],
            "via": "token",
        }
        # a refresh token is not an access token, nor the reverse
        r = await c.get("/v1/vehicles", headers={"Authorization": f"Bearer {tok['refresh_token']}"})
        assert r.status_code == 401
        r = await c.post(
            "/v1/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": tok["access_token"]},
        )
        assert r.status_code == 401
        r = await c.post(
            "/v1/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]},
        )
        assert r.status_code == 200 and r.json()["access_token"]
        r = await c.post("/v1/auth/token", data={"grant_type": "client_credentials"})
        assert r.status_code == 422


async def test_wrong_password_unknown_user_and_forged_or_expired_tokens(svc: Any) -> None:
    for user, pw in (("ops-li", "wrong password!"), ("nobody-here", PASSWORD)):
        r = await _sign_in(svc.url, user, pw)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.json()["type"] == "/problems/unauthenticated"
    secret = svc.settings.auth.secret.get_secret_value()
    account = await svc.runtime.store.account(username="ops-li")
    now = int(time.time())
    claims = {"sub": account.id, "typ": "access", "role": "operator", "name": "ops-li"}
    expired = jwt.encode({**claims, "exp": now - 5}, secret, algorithm="HS256")
    forged = jwt.encode({**claims, "exp": now + 60}, "x" * 40, algorithm="HS256")
    unsigned = jwt.encode({**claims, "exp": now + 60}, None, algorithm="none")
    async with httpx.AsyncClient(base_url=svc.url) as c:
        for token, why in ((expired, "expired"), (forged, "valid"), (unsigned, "valid")):
            r = await c.get("/v1/vehicles", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401 and why in r.json()["detail"], r.text
    lines = (await svc.http.get("/v1/audit", params={"object_type": "account"})).json()
    tries = [x for x in lines if x["action"] == "auth.token"]
    assert [x["outcome"] for x in tries[-2:]] == ["401 unauthenticated"] * 2
    assert tries[-1]["actor"] == "nobody-here"


async def test_a_disabled_account_loses_its_token_and_cannot_sign_in(svc: Any) -> None:
    tok = (await _sign_in(svc.url, "ops-li", PASSWORD)).json()
    headers = {"Authorization": f"Bearer {tok['access_token']}"}
    async with httpx.AsyncClient(base_url=svc.url, headers=headers) as c:
        assert (await c.get("/v1/vehicles")).status_code == 200
        assert (await svc.http.post("/v1/users/ops-li/disable")).json()["disabled"] is True
        assert (await c.get("/v1/vehicles")).status_code == 401
        r = await c.post(
            "/v1/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]},
        )
        assert r.status_code == 401
    assert (await _sign_in(svc.url, "ops-li", PASSWORD)).status_code == 401
    await svc.http.post("/v1/users/ops-li/enable")
    assert (await _sign_in(svc.url, "ops-li", PASSWORD)).status_code == 200


async def test_api_keys_work_until_revoked_and_are_shown_once(svc: Any) -> None:
    r = await svc.http.post("/v1/users/ops-li/api-keys", json={"name": "bureau export"})
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    assert key.startswith("sf_")
    listed = (await svc.http.get("/v1/users/ops-li/api-keys")).json()
    assert listed[0]["key"] is None and listed[0]["name"] == "bureau export"
    async with httpx.AsyncClient(base_url=svc.url) as c:
        assert (await c.get("/v1/vehicles", headers={"X-API-Key": key})).status_code == 200
        me = await c.get("/v1/auth/me", headers={"Authorization": f"Bearer {key}"})
        assert me.json()["via"] == f"api-key:{r.json()['id']}"
        wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
        assert (await c.get("/v1/vehicles", headers={"X-API-Key": wrong})).status_code == 401
        assert (await svc.http.delete(f"/v1/api-keys/{r.json()['id']}")).status_code == 204
        assert (await c.get("/v1/vehicles", headers={"X-API-Key": key})).status_code == 401


@pytest.mark.parametrize("secret", [None, "changeme", "short-but-not-a-default"])
def test_no_start_without_a_real_secret_outside_development(tmp_path: Path, secret: Any) -> None:
    settings = service_settings(tmp_path, auth={"secret": secret})
    with pytest.raises(ConfigError, match=r"auth\.secret"):
        create_app(settings)
    dev = service_settings(
        tmp_path, auth={"secret": secret}, service={"environment": "development"}
    )
    create_app(dev)  # development mode runs (with a generated secret when none is set)


async def test_users_cli_creates_the_first_admin(tmp_path: Path) -> None:
    settings = service_settings(tmp_path)
    env = {
        "STREETFLEET_DATABASE__URL": settings.database.url,
        "STREETFLEET_LOGGING__LEVEL": "warning",
        "PATH": "/usr/bin:/bin",
    }
    cli = [str(Path(sys.executable).with_name("streetfleet"))]

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cli, "users", *args], input=stdin, capture_output=True, text=True, env=env, timeout=60
        )

    made = run("create", "chief", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    gen = run("create", "staff-c05", "--role", "community_staff", "--community", "C05")
    assert gen.returncode == 0 and "password: " in gen.stdout, gen.stderr
    bad = run("create", "staff-x", "--role", "community_staff", "--community", "Z99")
    assert bad.returncode == 1 and "unknown communities: Z99" in bad.stderr
    short = run("create", "weak", "--role", "viewer", "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and "at least 12" in short.stderr
    assert run("disable", "staff-c05").returncode == 0
    listing = run("list").stdout
    assert "chief" in listing and "disabled" in listing and "C05" in listing
    key = run("api-key", "chief", "--name", "ci").stdout.strip()
    async with running_service(settings) as svc:
        assert (await _sign_in(svc.url, "chief", PASSWORD)).status_code == 200
        password = gen.stdout.split("password: ")[1].strip()
        assert (await _sign_in(svc.url, "staff-c05", password)).status_code == 401  # disabled
        async with httpx.AsyncClient(base_url=svc.url, headers={"X-API-Key": key}) as c:
            assert (await c.get("/v1/auth/me")).json()["username"] == "chief"
        audit = await svc.runtime.store.audit_log(limit=1000)
        assert {"account.create", "account.disable", "api_key.create"} <= {a.action for a in audit}
        by_cli = {a.detail["username"] for a in audit if a.actor.startswith("cli:")}
        assert by_cli == {"chief", "staff-c05"}
