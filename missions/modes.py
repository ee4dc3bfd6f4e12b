"""How a delivery load travels (drone or van), and the choice with its reason.

Neutral ground between the mission kinds: the drone delivery kind installs the rule that
chooses (:mod:`missions.delivery.mode`), the van shuttle kind plans what it sends by van, and
the dispatcher carries the choice between them (:meth:`missions.dispatcher.Dispatcher.mode_for`)
without knowing either kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Mode(StrEnum):
    """How a task travels."""

    DRONE = "drone"
    """A drone sortie."""
    VAN = "van"
    """A stop of a van trip."""
    UNSERVED = "unserved"
    """Nothing takes it in this plan; it stays queued."""


@dataclass(frozen=True, slots=True)
class ModeChoice:
    """How a load travels, and why."""

    mode: Mode
    """``drone`` or ``van``."""
    reason: str

    @property
    def by_drone(self) -> bool:
        return self.mode is Mode.DRONE
