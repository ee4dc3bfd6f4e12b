"""What a caller may see: community staff act only for their own communities.

Another community's request, mission or broadcast is answered as if it did not exist (404):
the id alone tells a member of staff nothing. Asking for work for another community, or
filtering a list by one, is a 403 (the caller named that community)."""

from __future__ import annotations

from collections.abc import Iterable

from api.auth import Forbidden
from fleet.accounts import Principal
from fleet.errors import NotFound
from fleet.store.repository import RequestRecord
from fleet.store.tables import Task


def communities(who: Principal) -> frozenset[str] | None:
    """The communities a list is limited to (None: every one)."""
    return who.communities if who.scoped else None


def may_ask_for(who: Principal, community_id: str) -> None:
    """Refuse work for, or a filter on, a community that is not the caller's."""
    if not who.may_act_for(community_id):
        raise Forbidden(
            f"{who.username} acts for {', '.join(sorted(who.communities))}, not {community_id}",
            community_id=community_id,
        )


def request_visible(who: Principal, record: RequestRecord) -> RequestRecord:
    """``record`` when the caller may see it; a 404 otherwise."""
    if not who.may_act_for(record.request.community_id):
        raise NotFound("request", record.request.id)
    return record


def serves(who: Principal, tasks: Iterable[Task]) -> bool:
    """Whether a mission with these tasks carries work the caller may see."""
    return not who.scoped or any(who.may_act_for(t.community_id) for t in tasks)


def mission_visible(who: Principal, mission_id: str, tasks: Iterable[Task]) -> None:
    """A 404 unless the caller may see the mission (staff: one of its tasks is theirs)."""
    if not serves(who, tasks):
        raise NotFound("mission", mission_id)
