"""Accounts, roles, passwords and API keys: who may use the service, and as what.

An :class:`~fleet.store.tables.Account` has one :class:`Role`; a ``community_staff`` account is
bound to one or more communities and acts only for them. People sign in with a password
(argon2id through ``pwdlib``, the hasher FastAPI's security guide uses; the hash carries its own
parameters, so raising them later re-hashes on the next sign-in). Integrations present an API key
``sf_<id>_<secret>``: the id finds the key, the secret is compared by its SHA-256 in constant
time (a random 256-bit secret needs no slow hash, as for GitHub's or Stripe's keys), and only the
hash is stored, so the key is shown once, when it is made.

No account exists until one is created (``streetfleet users create``, or the demo accounts of
development mode): there is no default password.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pwdlib import PasswordHash

from fleet.errors import NotFound, ValidationError
from fleet.store.tables import Account, ApiKey, AuditLog

if TYPE_CHECKING:
    from fleet.store.repository import Store


class Role(StrEnum):
    """What an account may do (``docs/api.md#accounts-and-roles`` has the route matrix)."""

    ADMIN = "admin"
    """Everything, including accounts and the audit log."""
    OPERATOR = "operator"
    """Runs the fleet: requests, missions, vehicles, stock, shuttle plans, commands."""
    COMMUNITY_STAFF = "community_staff"
    """Asks for deliveries and broadcasts for its own communities and follows them."""
    VIEWER = "viewer"
    """Reads what operators read (other departments); changes nothing."""


ALL_ROLES: tuple[Role, ...] = tuple(Role)
STAFF: tuple[Role, ...] = (Role.ADMIN, Role.OPERATOR)
"""The roles that run the fleet."""

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD = 12
"""Shortest password accepted (NIST SP 800-63B asks for at least 8; 12 for operators)."""
API_KEY = re.compile(r"^sf_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})$")

_hasher = PasswordHash.recommended()
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
"""Verified against when the account does not exist, so that a wrong username takes as long
as a wrong password (no account enumeration by timing)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the account, its role and its communities."""

    account_id: str
    username: str
    role: Role
    communities: frozenset[str]
    via: str = "token"
    """``token`` (password sign-in) or ``api-key:<id>``."""

    def may_act_for(self, community_id: str) -> bool:
        """Whether this principal may see and act on work for ``community_id``."""
        return self.role != Role.COMMUNITY_STAFF or community_id in self.communities

    @property
    def scoped(self) -> bool:
        """Whether what this principal sees is limited to its communities."""
        return self.role == Role.COMMUNITY_STAFF


def principal_of(account: Account, via: str = "token") -> Principal:
    return Principal(
        account.id, account.username, Role(account.role), frozenset(account.communities), via
    )


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(password: str, hashed: str | None) -> bool:
    """Whether ``password`` matches ``hashed`` (False for an account without a password)."""
    try:
        return _hasher.verify(password, hashed or _DUMMY_HASH) and hashed is not None
    except Exception:  # a malformed stored hash is a refusal, not an error page
        return False


def generate_password() -> str:
    """A random password for a new or demo account (about 120 bits)."""
    return secrets.token_urlsafe(15)


def validate_account(
    username: str, role: str, communities: Sequence[str], known_communities: set[str] | None
) -> tuple[Role, list[str]]:
    """Check a new account's fields; returns the role and the sorted, unique communities."""
    if not USERNAME.match(username):
        raise ValidationError(
            "2 to 64 characters: lower-case letters, digits, '.', '_' or '-', starting with a "
            "letter or digit",
            field="username",
        )
    try:
        r = Role(role)
    except ValueError:
        raise ValidationError(
            f"unknown role {role!r} (one of {', '.join(ALL_ROLES)})", field="role"
        ) from None
    comms = sorted(set(communities))
    if r == Role.COMMUNITY_STAFF and not comms:
        raise ValidationError("community staff act for at least one community", field="communities")
    if r != Role.COMMUNITY_STAFF and comms:
        raise ValidationError("only community staff are bound to communities", field="communities")
    if known_communities is not None:
        unknown = [c for c in comms if c not in known_communities]
        if unknown:
            raise ValidationError(f"unknown communities: {', '.join(unknown)}", field="communities")
    return r, comms


def validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValidationError(f"at least {MIN_PASSWORD} characters", field="password")


class Accounts:
    """Account operations on the store, each with its audit line (API and CLI share them)."""

    def __init__(self, store: Store, known_communities: set[str] | None = None) -> None:
        self.store = store
        self.known_communities = known_communities

    async def create(
        self,
        username: str,
        role: str,
        *,
        password: str | None,
        communities: Sequence[str] = (),
        actor: str,
        at: datetime,
    ) -> Account:
        """A new account (a password of at least :data:`MIN_PASSWORD` characters, or none:
        API keys only)."""
        r, comms = validate_account(username, role, communities, self.known_communities)
        if password is not None:
            validate_password(password)
        account = Account(
            username=username,
            password_hash=hash_password(password) if password is not None else None,
            role=str(r),
            communities=comms,
            created_at=at,
            created_by=actor,
            updated_at=at,
        )
        audit = _audit(actor, at, "account.create", "", {"role": str(r), "communities": comms})
        audit.detail["username"] = username
        return await self.store.add_account(account, audit)

    async def set_password(self, username: str, password: str, *, actor: str, at: datetime) -> None:
        validate_password(password)
        audit = _audit(actor, at, "account.password", "", {"username": username})
        changes = {"password_hash": hash_password(password), "updated_at": at}
        await self.store.update_account(username, changes, audit)

    async def set_disabled(
        self, username: str, disabled: bool, *, actor: str, at: datetime
    ) -> Account:
        """Disable (or enable again) an account: its tokens and keys stop working within
        ``auth.principal_cache_s``, and it cannot sign in or refresh."""
        action = "account.disable" if disabled else "account.enable"
        audit = _audit(actor, at, action, "", {"username": username})
        return await self.store.update_account(
            username, {"disabled": disabled, "updated_at": at}, audit
        )

    async def sign_in(self, username: str, password: str) -> Account | None:
        """The account when the password is right and the account enabled, else None."""
        try:
            account = await self.store.account(username=username)
        except NotFound:
            check_password(password, None)  # the same time as a wrong password
            return None
        if not check_password(password, account.password_hash) or account.disabled:
            return None
        return account

    async def create_api_key(
        self, username: str, name: str, *, actor: str, at: datetime
    ) -> tuple[ApiKey, str]:
        """A new key for the account; returns the stored key and the full key text (shown
        once: only its hash is kept)."""
        account = await self.store.account(username=username)
        key_id = "".join(secrets.choice(_ALNUM) for _ in range(12))
        secret = secrets.token_urlsafe(32)
        key = ApiKey(
            id=key_id,
            account_id=account.id,
            name=name,
            secret_sha256=_sha256(secret),
            created_at=at,
        )
        audit = _audit(actor, at, "api_key.create", key_id, {"username": username, "name": name})
        audit.object_type = "api_key"
        await self.store.add_api_key(key, audit)
        return key, f"sf_{key_id}_{secret}"

    async def revoke_api_key(self, key_id: str, *, actor: str, at: datetime) -> None:
        audit = _audit(actor, at, "api_key.revoke", key_id, {})
        audit.object_type = "api_key"
        await self.store.revoke_api_key(key_id, at, audit)

    async def check_api_key(self, text: str) -> Account | None:
        """The account of a valid, unrevoked key of an enabled account, else None."""
        m = API_KEY.match(text)
        if m is None:
            return None
        found = await self.store.api_key(m.group(1))
        if found is None:
            return None
        key, account = found
        if not hmac.compare_digest(key.secret_sha256, _sha256(m.group(2))):
            return None
        if key.revoked_at is not None or account.disabled:
            return None
        return account


_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _audit(
    actor: str, at: datetime, action: str, object_id: str, detail: dict[str, Any]
) -> AuditLog:
    return AuditLog(
        at=at,
        actor=actor,
        action=action,
        object_type="account",
        object_id=object_id,
        detail=detail,
        outcome="ok",
    )
