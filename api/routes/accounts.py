"""``/v1/users``, ``/v1/api-keys`` and ``/v1/audit``: accounts, their keys and the audit log
(admins only). The same operations are on the command line: ``streetfleet users``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from api.auth import AdminDep, authenticator
from api.deps import RuntimeDep
from api.schemas import MAX_ID
from fleet.accounts import MIN_PASSWORD, Accounts, Role, generate_password
from fleet.store.tables import Account, ApiKey, AuditLog

router = APIRouter(tags=["accounts"])


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AccountIn(_In):
    username: str = Field(min_length=2, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]{1,63}$")
    role: Role
    communities: list[str] = Field(
        default_factory=list, max_length=200, description="Required for community_staff only"
    )
    password: str | None = Field(
        None,
        min_length=MIN_PASSWORD,
        max_length=1024,
        description="Omitted: a random one is generated and returned once",
    )


class AccountOut(BaseModel):
    id: str
    username: str
    role: Role
    communities: list[str]
    disabled: bool
    created_at: datetime
    created_by: str
    password: str | None = Field(None, description="Only when the service generated it, once")


class PasswordIn(_In):
    password: str = Field(min_length=MIN_PASSWORD, max_length=1024)


class ApiKeyIn(_In):
    name: str = Field(min_length=1, max_length=100, description="What the key is for")


class ApiKeyOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None
    key: str | None = Field(None, description="The full key, shown once, when it is created")


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    outcome: str
    detail: dict[str, object]


def _accounts(request: Request, rt: RuntimeDep) -> Accounts:
    return authenticator(request).accounts


def _account_out(a: Account, password: str | None = None) -> AccountOut:
    return AccountOut(
        id=a.id,
        username=a.username,
        role=Role(a.role),
        communities=list(a.communities),
        disabled=a.disabled,
        created_at=a.created_at,
        created_by=a.created_by,
        password=password,
    )


def _key_out(k: ApiKey, full: str | None = None) -> ApiKeyOut:
    return ApiKeyOut(
        id=k.id, name=k.name, created_at=k.created_at, revoked_at=k.revoked_at, key=full
    )


@router.get("/v1/users", response_model=list[AccountOut])
async def list_users(rt: RuntimeDep, who: AdminDep) -> list[AccountOut]:
    """Every account."""
    return [_account_out(a) for a in await rt.store.accounts()]


@router.post(
    "/v1/users",
    response_model=AccountOut,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "The username is taken"}},
)
async def create_user(
    body: AccountIn, request: Request, response: Response, rt: RuntimeDep, who: AdminDep
) -> AccountOut:
    """Create an account. Community staff name their communities."""
    generated = generate_password() if body.password is None else None
    account = await _accounts(request, rt).create(
        body.username,
        body.role,
        password=body.password or generated,
        communities=body.communities,
        actor=who.username,
        at=rt.clock.now(),
    )
    response.headers["Location"] = f"/v1/users/{account.username}"
    return _account_out(account, generated)


@router.get("/v1/users/{username}", response_model=AccountOut)
async def get_user(username: str, rt: RuntimeDep, who: AdminDep) -> AccountOut:
    return _account_out(await rt.store.account(username=username))


async def _set_disabled(
    username: str, disabled: bool, request: Request, rt: RuntimeDep, who: AdminDep
) -> AccountOut:
    accounts = _accounts(request, rt)
    account = await accounts.set_disabled(username, disabled, actor=who.username, at=rt.clock.now())
    authenticator(request).forget()
    return _account_out(account)


@router.post("/v1/users/{username}/disable", response_model=AccountOut)
async def disable_user(
    username: str, request: Request, rt: RuntimeDep, who: AdminDep
) -> AccountOut:
    """Disable an account: it can no longer sign in, refresh or use its keys (its tokens stop
    working within ``auth.principal_cache_s``)."""
    return await _set_disabled(username, True, request, rt, who)


@router.post("/v1/users/{username}/enable", response_model=AccountOut)
async def enable_user(username: str, request: Request, rt: RuntimeDep, who: AdminDep) -> AccountOut:
    return await _set_disabled(username, False, request, rt, who)


@router.put("/v1/users/{username}/password", status_code=status.HTTP_204_NO_CONTENT)
async def set_password(
    username: str, body: PasswordIn, request: Request, rt: RuntimeDep, who: AdminDep
) -> None:
    """Set an account's password."""
    await _accounts(request, rt).set_password(
        username, body.password, actor=who.username, at=rt.clock.now()
    )


@router.get("/v1/users/{username}/api-keys", response_model=list[ApiKeyOut])
async def list_api_keys(username: str, rt: RuntimeDep, who: AdminDep) -> list[ApiKeyOut]:
    """An account's keys (never their secret)."""
    account = await rt.store.account(username=username)
    return [_key_out(k) for k in await rt.store.api_keys(account.id)]


@router.post(
    "/v1/users/{username}/api-keys",
    response_model=ApiKeyOut,
    status_code=status.HTTP_201_CREATED,
)
async def create_api_key(
    username: str, body: ApiKeyIn, request: Request, rt: RuntimeDep, who: AdminDep
) -> ApiKeyOut:
    """A new API key for the account; the full key is in this answer only."""
    key, full = await _accounts(request, rt).create_api_key(
        username, body.name, actor=who.username, at=rt.clock.now()
    )
    return _key_out(key, full)


@router.delete("/v1/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_api_key(key_id: str, request: Request, rt: RuntimeDep, who: AdminDep) -> None:
    """Revoke a key (it stops working within ``auth.principal_cache_s``)."""
    await _accounts(request, rt).revoke_api_key(key_id, actor=who.username, at=rt.clock.now())
    authenticator(request).forget()


@router.get("/v1/audit", response_model=list[AuditOut])
async def audit_log(
    rt: RuntimeDep,
    who: AdminDep,
    after_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    actor: Annotated[str | None, Query(max_length=100)] = None,
    object_type: Annotated[str | None, Query(max_length=32)] = None,
    object_id: Annotated[str | None, Query(max_length=64)] = None,
) -> list[AuditOut]:
    """Who did what, when, and how it ended, oldest first: every mutating call and sign-in.
    Page with ``after_id`` (the last ``id`` seen)."""
    rows: list[AuditLog] = list(
        await rt.store.audit_log(
            limit=limit,
            after_id=after_id,
            actor=actor,
            object_type=object_type,
            object_id=object_id,
        )
    )
    return [
        AuditOut(
            id=r.id or 0,
            at=r.at,
            actor=r.actor,
            action=r.action,
            object_type=r.object_type,
            object_id=r.object_id,
            outcome=r.outcome,
            detail=r.detail,
        )
        for r in rows
    ]
