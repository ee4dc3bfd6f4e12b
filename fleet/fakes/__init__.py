"""In-memory fakes of the vehicle control ports, for tests of mission logic without sockets.

:class:`FakeDrone` (:class:`fleet.drone.DroneControl`), :class:`FakeVan`
(:class:`fleet.van.VanControl`) and :class:`FakeSpeaker` (:class:`fleet.speaker.SpeakerControl`)
honour the port contracts as the real bridges do (``firmware_bridges``): a command returns on
success or raises the same :class:`fleet.errors.VehicleError` the bridge raises, with the same
structured fields (``MissionUploadError`` with the vehicle's words in ``fields["reason"]``,
``CommandRejected`` with the VDA 5050 ``error_type`` or the payload's ``code``,
``CommandTimeout``, ``LinkLost``). Like a link, each fake writes the vehicle's live
:class:`fleet.vehicle.VehicleStatus` in the :class:`fleet.registry.VehicleRegistry` and touches
it, so missions follow a fake exactly as they follow a real vehicle. ``tests/unit/fakes``
checks each fake against its port's contract.

How a test drives them:

1. create the fake and ``attach`` it to the registry of the mission context (its link
   discovering it); a speaker ``ride_on`` a drone;
2. let the service command it: the fake records every command (``commands``, ``plans``,
   ``trips``) and does what it was told to do wrong beforehand: ``refuse(command, reason)``,
   ``time_out(command)``, ``hold_back(command)`` (the call waits until ``let_through``),
   ``lose_link()``/``regain_link()``, ``go_offline()``, ``break_down()``;
3. move the world on with ``step()`` (one stage: a mission item, a node, an action) or
   ``fly()``/``drive()`` (until back on the ground / the trip is done). Steps take no world time:
   advance the :class:`fleet.clock.ManualClock` for timeouts. After each step the fake awaits
   its ``settle`` hook, which a test sets to wait until the mission following the vehicle has
   looked at the change (a real vehicle's changes are seconds apart; a run must never miss the
   take-off).

Nothing here does I/O or sleeps on real time.
"""

from __future__ import annotations

from fleet.fakes.drone import FakeDrone, Release
from fleet.fakes.faults import FaultKind, Faults
from fleet.fakes.speaker import FakeSpeaker
from fleet.fakes.van import FakeVan

__all__ = ["FakeDrone", "FakeSpeaker", "FakeVan", "FaultKind", "Faults", "Release"]
