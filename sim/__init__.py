"""Simulators speaking the real wire protocols.

PX4-like MAVLink drones and rovers, VDA 5050 vans, the speaker payload. A sim vehicle knows only
what a real vehicle would: of ours it imports only an allow-list, ``fleet``'s pure domain model
(clock, errors, geodesy, vehicle and flight-plan types, the world and its file), MQTT plumbing
and the bridges' ``wire`` modules, never the service's runtime, ``missions`` or ``api`` (the
import-linter contracts in ``pyproject.toml``, ``tests/unit/sim/test_sim_imports.py``, and
``docs/architecture.md``). This ``__init__`` imports nothing.
"""
