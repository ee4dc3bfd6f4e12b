"""Simulators speaking the real wire protocols.

PX4-like MAVLink drones and rovers, VDA 5050 vans, the speaker payload. A sim vehicle knows only
what a real vehicle would: it imports only the pure domain model of ``fleet`` and the wire
modules of ``firmware_bridges``.
"""
