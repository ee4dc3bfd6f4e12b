"""The authorisation matrix: every route of the API, called by every role and by nobody, over
real HTTP on a running service; and community staff trying other communities' work.

What is checked for each route × caller:

* nobody (no credentials, or a bad token): 401 problem with ``WWW-Authenticate: Bearer``;
* a role the route does not declare: 403 problem;
* a role it declares: neither 401 nor 403, and no server error (the dummy ids and empty bodies
  get their 404 or 422 problem).

Every route either declares its roles or is on the documented public list below, so a new route
without a declaration fails here. ``docs/api.md`` carries the same matrix, generated from the
declarations (:func:`matrix_markdown`); a test keeps it current.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from api.auth import allowed_roles
from api.openapi import operations
from fleet.accounts import ALL_ROLES, Role
from tests.service import RunningService, running_service, service_settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"

PUBLIC = {
    ("POST", "/v1/auth/token"),  # signing in
    ("GET", "/healthz"),  # probes and the scraper (docs/deployment.md)
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/v1/clips/{sha256}.wav"),  # speaker payloads fetch their clip by its hash
    ("GET", "/"),  # redirects to the dashboard, which signs in
}
"""The routes anyone may call (docs/api.md, "Accounts and roles")."""

USERS = {
    Role.ADMIN: ("m-admin", ()),
    Role.OPERATOR: ("m-operator", ()),
    Role.COMMUNITY_STAFF: ("m-staff", ("C01",)),
    Role.VIEWER: ("m-viewer", ()),
}


def _path(template: str) -> str:
    out = template
    while "{" in out:
        a, b = out.index("{"), out.index("}")
        out = out[:a] + "nope" + out[b + 1 :]
    return out


async def _call(http: httpx.AsyncClient, method: str, path: str) -> httpx.Response:
    if path.endswith("/events/stream"):
        async with http.stream(method, path) as r:
            return r  # the status is all we need; leaving closes the stream
    body: dict[str, Any] | None = {} if method in {"POST", "PUT", "PATCH"} else None
    return await http.request(method, path, json=body)


def matrix_markdown(app: Any) -> str:
    """The route × role table of ``docs/api.md``."""
    roles = list(ALL_ROLES)
    head = "| route | " + " | ".join(str(r) for r in roles) + " |"
    rows = [head, "|---|" + "---|" * len(roles)]
    for o in sorted(operations(app), key=lambda o: (o.path, sorted(o.methods))):
        declared = allowed_roles(o.route)
        for method in sorted(o.methods - {"HEAD"}):
            if declared is None:
                cells = ["public"] * len(roles)
            else:
                cells = ["yes" if r in declared else "—" for r in roles]
            rows.append(f"| `{method} {o.path}` | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


@pytest.fixture
async def svc(tmp_path: Path) -> Any:
    async with running_service(service_settings(tmp_path)) as s:
        yield s


async def test_every_route_answers_every_role_as_declared(svc: RunningService) -> None:
    app_ops = list(operations(svc.app))
    assert len(app_ops) > 40
    clients = {role: await svc.client(name, role, comms) for role, (name, comms) in USERS.items()}
    nobody = httpx.AsyncClient(base_url=svc.url, timeout=10.0)
    forged = httpx.AsyncClient(
        base_url=svc.url, timeout=10.0, headers={"Authorization": "Bearer not.a.token"}
    )
    checked = 0
    try:
        for o in app_ops:
            declared = allowed_roles(o.route)
            for method in sorted(o.methods - {"HEAD"}):
                if declared is None:
                    assert (method, o.path) in PUBLIC, f"{method} {o.path} declares no roles"
                    continue
                path = _path(o.path)
                for anonymous in (nobody, forged):
                    r = await _call(anonymous, method, path)
                    assert r.status_code == 401, (method, o.path, r.status_code)
                    assert r.headers["www-authenticate"] == "Bearer"
                    assert r.headers["content-type"] == "application/problem+json"
                for role, http in clients.items():
                    r = await _call(http, method, path)
                    if role in declared:
                        assert r.status_code not in (401, 403), (method, o.path, role, r.text)
                        assert r.status_code < 500, (method, o.path, role, r.text)
                    else:
                        assert r.status_code == 403, (method, o.path, role, r.status_code)
                        assert r.headers["content-type"] == "application/problem+json"
                    checked += 1
    finally:
        await nobody.aclose()
        await forged.aclose()
    assert checked >= 4 * 45


async def test_community_staff_act_only_for_their_communities(svc: RunningService) -> None:
    admin = svc.http
    for wh_sku in ("medicine",):
        r = await admin.post("/v1/warehouses/W1/stock", json={"sku_id": wh_sku, "quantity": 50})
        assert r.status_code in (200, 201), r.text
    mine = await admin.post(
        "/v1/requests",
        json={"community_id": "C01", "items": [{"sku_id": "medicine", "quantity": 1}]},
    )
    theirs = await admin.post(
        "/v1/requests",
        json={"community_id": "C02", "items": [{"sku_id": "medicine", "quantity": 1}]},
    )
    assert mine.status_code == theirs.status_code == 201
    mine_id, theirs_id = mine.json()["id"], theirs.json()["id"]
    staff = await svc.client("c01-staff", Role.COMMUNITY_STAFF, ["C01"])

    # another community's request is answered as if it did not exist
    for method, path in (
        ("GET", f"/v1/requests/{theirs_id}"),
        ("POST", f"/v1/requests/{theirs_id}/cancel"),
        ("GET", f"/v1/broadcasts/{theirs_id}"),
        ("GET", f"/v1/requests/{theirs_id}/report"),
    ):
        r = await staff.request(method, path, json={"reason": "x"} if method == "POST" else None)
        assert r.status_code == 404, (path, r.text)
    assert (await staff.get(f"/v1/requests/{mine_id}")).status_code == 200

    # asking for, or filtering by, another community is refused by name
    r = await staff.post(
        "/v1/requests",
        json={"community_id": "C02", "items": [{"sku_id": "medicine", "quantity": 1}]},
    )
    assert r.status_code == 403 and r.json()["community_id"] == "C02", r.text
    assert (await staff.get("/v1/requests", params={"community_id": "C02"})).status_code == 403
    r = await staff.post(
        "/v1/broadcasts",
        json={
            "area": {"community_id": "C02"},
            "message": {"text": "hello", "language": "en"},
        },
    )
    assert r.status_code == 403, r.text
    drawn = {"vertices": [[22.5, 114.0], [22.5, 114.1], [22.6, 114.1]]}
    r = await staff.post(
        "/v1/broadcasts",
        json={"area": drawn, "message": {"text": "hello", "language": "en"}, "community_id": "C01"},
    )
    assert r.status_code == 403 and "area.community_id" in r.json()["detail"], r.text

    # lists hold their communities' work only
    listed = (await staff.get("/v1/requests")).json()
    assert [x["id"] for x in listed] == [mine_id]
    assert {x["community_id"] for x in (await admin.get("/v1/requests")).json()} == {"C01", "C02"}

    # and what they may do to their own work, they can
    r = await staff.post(f"/v1/requests/{mine_id}/cancel", json={"reason": "not needed"})
    assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text


async def test_refusals_are_in_the_audit_log(svc: RunningService) -> None:
    viewer = await svc.client("aud-viewer", Role.VIEWER)
    r = await viewer.post(
        "/v1/requests", json={"community_id": "C01", "items": [{"sku_id": "mask", "quantity": 1}]}
    )
    assert r.status_code == 403
    nobody = await httpx.AsyncClient(base_url=svc.url).__aenter__()
    try:
        assert (await nobody.delete("/v1/shuttle-plans/x")).status_code == 401
    finally:
        await nobody.aclose()
    lines = (await svc.http.get("/v1/audit", params={"limit": 1000})).json()
    refused = [x for x in lines if x["action"] == "POST /v1/requests"]
    assert refused and refused[-1]["actor"] == "aud-viewer"
    assert refused[-1]["outcome"].startswith("403 forbidden"), refused[-1]
    assert refused[-1]["detail"]["role"] == "viewer"
    anon = [x for x in lines if x["action"] == "DELETE /v1/shuttle-plans/{plan_id}"]
    assert anon and anon[-1]["actor"] == "anonymous" and anon[-1]["outcome"].startswith("401")
    assert anon[-1]["object_type"] == "shuttle-plans" and anon[-1]["object_id"] == "x"
    assert (await viewer.get("/v1/audit")).status_code == 403


def test_docs_carry_the_matrix_of_the_declarations(tmp_path: Path) -> None:
    from api.app import create_app

    app = create_app(service_settings(tmp_path))
    table = matrix_markdown(app)
    assert table in DOCS.read_text(), (
        "docs/api.md's role matrix is not the routes' declarations; paste this table:\n" + table
    )
