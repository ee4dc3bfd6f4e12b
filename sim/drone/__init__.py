"""PX4-like MAVLink vehicles: SIH quadrotor and Ackermann rover (see ``docs/sim.md``).

:class:`sim.drone.vehicle.SimVehicle` is one vehicle on its UDP socket;
:class:`sim.drone.autopilot.Autopilot` its flight logic; :mod:`sim.drone.physics` the pure
kinematics.
"""
