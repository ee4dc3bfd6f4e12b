"""Who is calling, and whether the route lets them: tokens, API keys and role checks.

* ``POST /v1/auth/token`` is the OAuth2 token endpoint (RFC 6749): ``grant_type=password``
  (username and password, form-encoded) gives a short-lived access token (a JWT signed with
  ``auth.secret``, HS256, ``auth.access_token_ttl_s``) and a refresh token
  (``auth.refresh_token_ttl_s``); ``grant_type=refresh_token`` trades a refresh token for a new
  pair, after checking the account again. Every attempt is in the audit log.
* An integration sends an API key (``fleet.accounts``) as ``X-API-Key`` or as the bearer token.
* Every route declares the roles it allows with one dependency, :class:`Allow` (the aliases
  below); the role matrix in ``docs/api.md`` is generated from those declarations, and the
  OpenAPI carries them as ``x-roles``. No credentials is a 401 problem with
  ``WWW-Authenticate: Bearer``; a role the route does not allow is a 403 problem. Community
  staff get a 404 for another community's request, mission or broadcast, as for one that does
  not exist (the routes check :meth:`Principal.may_act_for`).

Accounts are read from the store at most every ``auth.principal_cache_s`` seconds per token or
key (a disabled account or revoked key stops working within that); the signature and the expiry
are checked on every request.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import jwt
import structlog
from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from pydantic import BaseModel, Field

from fleet.accounts import (
    ALL_ROLES,
    Accounts,
    Principal,
    Role,
    principal_of,
)
from fleet.errors import ConfigError, NotFound, StreetfleetError
from fleet.settings import Settings
from fleet.store.tables import AuditLog

log = structlog.get_logger(__name__)

ALGORITHM = "HS256"
MIN_SECRET = 32
"""Shortest token secret accepted outside development mode."""
KNOWN_WEAK = frozenset(
    {"secret", "changeme", "change-me", "streetfleet", "password", "dev", "development", "test"}
)
"""Secrets refused whatever their length rule (the defaults people copy from examples)."""


class Unauthenticated(StreetfleetError):
    """No valid credentials: sign in (``POST /v1/auth/token``) or send an API key."""

    code = "unauthenticated"
    http_status = 401


class Forbidden(StreetfleetError):
    """The caller's role may not do this."""

    code = "forbidden"
    http_status = 403


def token_secret(settings: Settings) -> str:
    """The key that signs tokens: ``auth.secret``; outside development mode a missing, short or
    well-known one stops the service from starting."""
    configured = settings.auth.secret.get_secret_value() if settings.auth.secret else ""
    weak = len(configured) < MIN_SECRET or configured.lower() in KNOWN_WEAK
    if not weak:
        return configured
    if settings.service.environment == "development":
        if configured:
            log.warning("auth.weak_secret_in_development")
            return configured
        return secrets.token_urlsafe(32)
    why = "is not set" if not configured else f"is under {MIN_SECRET} characters or a default"
    raise ConfigError(
        f"auth.secret {why}: set STREETFLEET_AUTH__SECRET to a random value of at least "
        f"{MIN_SECRET} characters (e.g. `python -c 'import secrets; "
        "print(secrets.token_urlsafe(32))'`), or run in development mode "
        '(service.environment = "development", as `streetfleet demo` does)',
        field="auth.secret",
    )


@dataclass
class Authenticator:
    """Issues and checks tokens, checks API keys, caches accounts briefly."""

    secret: str
    accounts: Accounts
    access_ttl_s: float
    refresh_ttl_s: float
    cache_s: float
    _cache: dict[str, tuple[float, Principal | None]] = field(default_factory=dict)

    # --- tokens --------------------------------------------------------------------------

    def issue(self, p: Principal) -> dict[str, Any]:
        """An access and a refresh token for ``p`` (the OAuth2 token response)."""
        now = int(time.time())
        base = {"sub": p.account_id, "name": p.username, "role": str(p.role), "iat": now}
        access = jwt.encode(
            {**base, "typ": "access", "exp": now + int(self.access_ttl_s)},
            self.secret,
            algorithm=ALGORITHM,
        )
        refresh = jwt.encode(
            {
                **base,
                "typ": "refresh",
                "exp": now + int(self.refresh_ttl_s),
                "jti": uuid.uuid4().hex,
            },
            self.secret,
            algorithm=ALGORITHM,
        )
        return {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": int(self.access_ttl_s),
            "refresh_token": refresh,
            "role": str(p.role),
            "communities": sorted(p.communities),
        }

    def _claims(self, token: str, typ: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                options={"require": ["exp", "sub", "typ"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated(f"the {typ} token has expired: sign in again") from None
        except jwt.PyJWTError:
            raise Unauthenticated(f"not a valid {typ} token") from None
        if claims.get("typ") != typ:
            raise Unauthenticated(f"not a valid {typ} token")
        return claims

    async def from_token(self, token: str) -> Principal:
        if token.startswith("sf_"):
            return await self.from_api_key(token)
        claims = self._claims(token, "access")
        p = await self._account(claims["sub"])
        if p is None:
            raise Unauthenticated("the account is disabled or gone")
        return p

    async def refresh(self, token: str) -> Principal:
        claims = self._claims(token, "refresh")
        self._cache.pop(f"id:{claims['sub']}", None)  # refreshing always reads the account
        p = await self._account(claims["sub"])
        if p is None:
            raise Unauthenticated("the account is disabled or gone")
        return p

    async def from_api_key(self, text: str) -> Principal:
        key = f"key:{text}"
        hit = self._cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.cache_s:
            p = hit[1]
        else:
            account = await self.accounts.check_api_key(text)
            via = f"api-key:{text[3:15]}"
            p = principal_of(account, via) if account is not None else None
            self._remember(key, p)
        if p is None:
            raise Unauthenticated("not a valid API key (unknown, revoked, or its account disabled)")
        return p

    async def _account(self, account_id: str) -> Principal | None:
        key = f"id:{account_id}"
        hit = self._cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.cache_s:
            return hit[1]
        try:
            account = await self.accounts.store.account(id=account_id)
        except NotFound:
            account = None
        p = principal_of(account) if account is not None and not account.disabled else None
        self._remember(key, p)
        return p

    def _remember(self, key: str, p: Principal | None) -> None:
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (time.monotonic(), p)

    def forget(self) -> None:
        """Drop every cached account (after a change made through this process)."""
        self._cache.clear()


oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def authenticator(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.auth
    return auth


class Allow:
    """A route's declaration of the roles it allows; resolves to the calling
    :class:`~fleet.accounts.Principal` (401 without valid credentials, 403 for another
    role). ``query_token`` also takes ``?access_token=`` (for browsers' ``EventSource``,
    which cannot send headers)."""

    def __init__(self, *roles: Role, query_token: bool = False) -> None:
        self.roles = frozenset(roles)
        self.query_token = query_token

    async def __call__(
        self,
        request: Request,
        bearer: Annotated[str | None, Depends(oauth2_scheme)],
        api_key: Annotated[str | None, Depends(api_key_header)],
    ) -> Principal:
        auth = authenticator(request)
        if api_key:
            p = await auth.from_api_key(api_key)
        elif bearer:
            p = await auth.from_token(bearer)
        elif self.query_token and request.query_params.get("access_token"):
            p = await auth.from_token(request.query_params["access_token"])
        else:
            raise Unauthenticated(
                "sign in: POST /v1/auth/token, then send Authorization: Bearer <access_token> "
                "(or an API key as X-API-Key)"
            )
        request.state.principal = p
        if p.role not in self.roles:
            raise Forbidden(
                f"role {p.role} may not {request.method} {request.url.path}",
                role=str(p.role),
                allowed=sorted(str(r) for r in self.roles),
            )
        return p


ADMIN = (Role.ADMIN,)
RUN = (Role.ADMIN, Role.OPERATOR)
READ = (Role.ADMIN, Role.OPERATOR, Role.VIEWER)
ASK = (Role.ADMIN, Role.OPERATOR, Role.COMMUNITY_STAFF)
ANY = ALL_ROLES

AdminDep = Annotated[Principal, Depends(Allow(*ADMIN))]
"""Admins only: accounts, the audit log."""
OperatorDep = Annotated[Principal, Depends(Allow(*RUN))]
"""Those who run the fleet: admins and operators."""
ReaderDep = Annotated[Principal, Depends(Allow(*READ))]
"""Those who read the whole fleet: admins, operators, viewers."""
RequesterDep = Annotated[Principal, Depends(Allow(*ASK))]
"""Those who ask for work: admins, operators, community staff (for their communities)."""
AnyoneDep = Annotated[Principal, Depends(Allow(*ANY))]
"""Any signed-in account (what community staff see is limited to their communities)."""


def allowed_roles(route: Any) -> frozenset[Role] | None:
    """The roles a route declares (None: the route is public)."""
    dependant = getattr(route, "dependant", None)
    stack = [dependant] if dependant is not None else []
    while stack:
        d = stack.pop()
        if isinstance(d.call, Allow):
            return d.call.roles
        stack.extend(d.dependencies)
    return None


# --- the token endpoint and the caller's own account ----------------------------------------

router = APIRouter(prefix="/v1/auth", tags=["auth"])


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"]
    expires_in: int = Field(description="Seconds the access token is valid")
    refresh_token: str
    role: Role
    communities: list[str]


class MeOut(BaseModel):
    username: str
    role: Role
    communities: list[str]
    via: str = Field(description="token or api-key:<id>")


@router.post(
    "/token",
    response_model=TokenOut,
    responses={
        401: {"description": "Wrong username or password, or an invalid refresh token"},
        422: {"description": "Not a form, or an unsupported grant_type"},
    },
)
async def token(
    request: Request,
    response: Response,
    grant_type: Annotated[Literal["password", "refresh_token"], Form()] = "password",
    username: Annotated[str | None, Form(max_length=64)] = None,
    password: Annotated[str | None, Form(max_length=1024)] = None,
    refresh_token: Annotated[str | None, Form(max_length=4096)] = None,
) -> dict[str, Any]:
    """OAuth2 token endpoint (form-encoded): the password grant signs in, the refresh_token
    grant renews a pair. The access token goes in ``Authorization: Bearer``."""
    auth = authenticator(request)
    rt = request.app.state.runtime
    response.headers["Cache-Control"] = "no-store"
    if grant_type == "password":
        if not username or password is None:
            raise Unauthenticated("the password grant needs username and password")
        account = await auth.accounts.sign_in(username, password)
        await _audit_sign_in(rt, username, "password", account is not None)
        if account is None:
            raise Unauthenticated("wrong username or password, or the account is disabled")
        return auth.issue(principal_of(account))
    if not refresh_token:
        raise Unauthenticated("the refresh_token grant needs refresh_token")
    try:
        p = await auth.refresh(refresh_token)
    except Unauthenticated:
        await _audit_sign_in(rt, "", "refresh_token", False)
        raise
    await _audit_sign_in(rt, p.username, "refresh_token", True)
    return auth.issue(p)


async def _audit_sign_in(rt: Any, username: str, grant: str, ok: bool) -> None:
    await rt.store.audit(
        AuditLog(
            at=rt.clock.now(),
            actor=username or "anonymous",
            action="auth.token",
            object_type="account",
            object_id="",
            detail={"grant_type": grant},
            outcome="ok" if ok else "401 unauthenticated",
        )
    )


@router.get("/me", response_model=MeOut)
async def me(who: AnyoneDep) -> MeOut:
    """The calling account: its role and communities."""
    return MeOut(
        username=who.username, role=who.role, communities=sorted(who.communities), via=who.via
    )
