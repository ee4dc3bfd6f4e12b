"""The one exception tree of streetfleet.

Every error the service raises on purpose derives from :class:`StreetfleetError`. Each class
carries a stable machine-readable ``code``, a human ``message`` and structured ``fields``
(vehicle id, field name, MAVLink result, ...). The API turns any of them into an RFC 9457
problem response in one handler, using ``http_status``.

Tree::

    StreetfleetError
    ├── ConfigError                 bad settings or config file
    ├── WorldFileError              bad world file (feature, reason)
    ├── ValidationError             bad input (field, reason)
    ├── NotFound                    unknown id
    ├── Conflict                    not allowed in the current state
    ├── PlanningError               no feasible plan (reason)
    │   └── InsufficientStock       stock cannot cover a reservation
    ├── StoreError                  the database refused or is unreachable
    │   └── StoreBusy               transient: a lock, a serialization failure, a dropped
    │                               connection; the same operation may succeed if tried again
    └── VehicleError                anything about talking to a vehicle
        ├── LinkError               transport problem (socket, broker)
        ├── LinkLost                no heartbeat/state within the timeout
        ├── CommandRejected         vehicle answered with a refusal
        ├── CommandTimeout          no answer after all retries
        ├── MissionUploadError      mission/fence/rally transfer failed or plan invalid
        └── SafetyCheckFailed       the vehicle's failsafes, fence or rally points are not
                                    what the service set (read back differs, or not settable)
"""

from __future__ import annotations

from typing import Any, ClassVar


class StreetfleetError(Exception):
    """Root of every deliberate streetfleet error."""

    code: ClassVar[str] = "error"
    """Stable identifier used in logs and API problem types."""
    http_status: ClassVar[int] = 500
    """Status the API answers with."""

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields: dict[str, Any] = fields

    def __str__(self) -> str:
        if not self.fields:
            return self.message
        extra = ", ".join(f"{k}={v!r}" for k, v in self.fields.items())
        return f"{self.message} ({extra})"

    def to_dict(self) -> dict[str, Any]:
        """Structured form for logs and API bodies."""
        return {"code": self.code, "message": self.message, **self.fields}


class ConfigError(StreetfleetError):
    """Settings or a configuration file are invalid."""

    code = "config"


class WorldFileError(StreetfleetError):
    """A world file is invalid; ``feature`` names the offending feature."""

    code = "world-file"
    http_status = 422

    def __init__(self, reason: str, *, feature: str | None = None, path: str | None = None):
        where = f"feature {feature}: " if feature is not None else ""
        super().__init__(f"{where}{reason}", feature=feature, path=path, reason=reason)


class ValidationError(StreetfleetError):
    """Input is invalid; ``field`` names it."""

    code = "validation"
    http_status = 422

    def __init__(self, reason: str, *, field: str | None = None, **fields: Any):
        where = f"{field}: " if field else ""
        super().__init__(f"{where}{reason}", field=field, reason=reason, **fields)


class NotFound(StreetfleetError):
    """The named object does not exist."""

    code = "not-found"
    http_status = 404

    def __init__(self, kind: str, ident: object):
        super().__init__(f"{kind} {ident!s} not found", kind=kind, id=str(ident))


class Conflict(StreetfleetError):
    """The operation is not allowed in the object's current state."""

    code = "conflict"
    http_status = 409


class PlanningError(StreetfleetError):
    """No feasible plan exists for the work; the message says why."""

    code = "planning"
    http_status = 422


class InsufficientStock(PlanningError):
    """Stock cannot cover a reservation or movement."""

    code = "insufficient-stock"
    http_status = 409


class StoreError(StreetfleetError):
    """The database refused an operation or could not be reached."""

    code = "store"
    http_status = 503


class StoreBusy(StoreError):
    """The database could not take the operation now: another writer holds the lock (SQLite
    ``database is locked`` after its busy timeout), PostgreSQL aborted it as a serialization
    failure or deadlock, or the connection dropped. Nothing of it was written; the same
    operation may succeed if tried again (:func:`fleet.store.retry.retrying`)."""

    code = "store-busy"


class VehicleError(StreetfleetError):
    """Talking to a vehicle failed."""

    code = "vehicle"
    http_status = 502


class LinkError(VehicleError):
    """The transport to a vehicle failed (socket, broker)."""

    code = "link"


class LinkLost(VehicleError):
    """The vehicle has been silent for longer than the link timeout."""

    code = "link-lost"


class CommandRejected(VehicleError):
    """The vehicle refused a command; ``result`` is its answer."""

    code = "command-rejected"
    http_status = 409


class CommandTimeout(VehicleError):
    """The vehicle did not answer a command after every retry."""

    code = "command-timeout"
    http_status = 504


class MissionUploadError(VehicleError):
    """A mission, fence or rally transfer failed, or the vehicle found the plan invalid."""

    code = "mission-upload"


class SafetyCheckFailed(VehicleError):
    """The vehicle does not hold the fleet's failsafe policy, fence or rally points: a value
    could not be set, or what was read back differs from what was set (``parameter``,
    ``expected``, ``actual``, or ``what``)."""

    code = "safety-check"
