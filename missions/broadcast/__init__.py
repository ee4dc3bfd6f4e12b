"""Loudspeaker broadcast missions: requests, speech, clips, coverage planning and proof.

* :mod:`.request`: the broadcast request staff submit, and its validation;
* :mod:`.voices`, :mod:`.speech`, :mod:`.clips`: text to speech with espeak-ng, clip storage;
* :mod:`.acoustics`: the speaker model (source level, spreading, absorption, audible radius);
* :mod:`.lanes`, :mod:`.timeline`, :mod:`.playback`, :mod:`.coverage`, :mod:`.planner`: the
  coverage plan and its prediction before flight (transits around no-fly zones by
  :mod:`fleet.airspace`);
* :mod:`.flight`: the broadcast steps of one drone's flight (clip, plan, session, records);
* :mod:`.report`: the proof of coverage after flight, with its PNG map.

See ``docs/broadcast.md``. :data:`KIND` is what the service installs (:mod:`missions.kinds`).
"""

from __future__ import annotations

from missions.broadcast.dispatch import BroadcastPlanner
from missions.broadcast.run import DroneBroadcastRun
from missions.kinds import MissionHost
from missions.states import MissionKind


class BroadcastKind:
    """The loudspeaker broadcast kind: its planner and its run."""

    name = MissionKind.DRONE_BROADCAST.value

    def install(self, host: MissionHost) -> BroadcastPlanner:
        planner = BroadcastPlanner(
            host.ctx, host.dispatcher, busy=host.is_busy, start_mission=host.spawn
        )
        host.dispatcher.add_planner(planner)
        host.register_run(DroneBroadcastRun)
        return planner


KIND = BroadcastKind()
"""The plugin the service installs."""

__all__ = ["KIND", "BroadcastKind", "BroadcastPlanner", "DroneBroadcastRun"]
