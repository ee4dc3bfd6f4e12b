"""What priority classes mean to the dispatcher: order, cost weights, labels and deadlines.

The classes themselves are :class:`missions.states.Priority` (urgent medical, vulnerable
residents such as elderly people living alone, standard), served in that order everywhere the
dispatcher has to choose: allocation inside a community, the drone queue, and van routing
costs, where lateness and non-service penalties are multiplied by :func:`class_weight`.
A request's deadline is, unless the approver sets one, :data:`DEFAULT_DEADLINE_S` after
approval: the warehouse-to-door target. Times are world seconds (``Clock.time()``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from fleet.errors import ValidationError
from missions.states import Priority

DEFAULT_DEADLINE_S = 5 * 3600.0
"""Warehouse-to-door target: a request approved at t is due at t + 5 h unless set otherwise."""

CLASS_WEIGHT: Mapping[Priority, int] = MappingProxyType(
    {Priority.URGENT_MEDICAL: 4, Priority.VULNERABLE: 2, Priority.STANDARD: 1}
)
"""Multiplier of lateness and non-service penalties in routing costs."""

CLASS_LABEL: Mapping[Priority, str] = MappingProxyType(
    {
        Priority.URGENT_MEDICAL: "urgent medical",
        Priority.VULNERABLE: "vulnerable residents",
        Priority.STANDARD: "standard",
    }
)
"""Human names for reasons and reports."""


def class_weight(p: Priority) -> int:
    """Cost multiplier of class ``p`` (4, 2, 1 from most to least urgent)."""
    return CLASS_WEIGHT[p]


def class_label(p: Priority) -> str:
    """Human name of class ``p``."""
    return CLASS_LABEL[p]


def deadline_for(
    approved_at: float, deadline: float | None = None, *, within_s: float = DEFAULT_DEADLINE_S
) -> float:
    """The deadline of a request approved at ``approved_at``: ``deadline`` when given (it may
    not precede approval), else ``approved_at + within_s``."""
    if deadline is None:
        if within_s <= 0:
            raise ValidationError("deadline window must be positive", field="within_s")
        return approved_at + within_s
    if deadline < approved_at:
        raise ValidationError(
            "deadline precedes approval", field="deadline", deadline=deadline, approved=approved_at
        )
    return deadline
