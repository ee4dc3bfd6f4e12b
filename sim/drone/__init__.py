"""PX4-like MAVLink vehicles: SIH quadrotor and Ackermann rover (see ``docs/sim.md``).

:class:`sim.drone.vehicle.SimVehicle` is one vehicle on its UDP socket, with its mission
protocol, commands, streams and telemetry, events, metadata and FTP server;
:class:`sim.drone.autopilot.Autopilot` is its commander, with the navigator
(:mod:`sim.drone.navigator`) and the failsafes (:mod:`sim.drone.failsafes`);
:mod:`sim.drone.physics` the pure kinematics.
"""
