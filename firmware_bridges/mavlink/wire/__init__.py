"""MAVLink wire types that the bridge and the simulated vehicles share.

What a PX4 vehicle and a ground station both have to know to talk: PX4's custom flight modes
(:mod:`.px4`), mission, fence and rally items and their MISSION_ITEM(_INT) encoding
(:mod:`.mission_items`), the events protocol and the PX4 events known without metadata
(:mod:`.px4_events`), libevents' metadata format and its rendering (:mod:`.event_metadata`,
:mod:`.event_text`), the component-information protocol (:mod:`.component_info`) and MAVLink FTP
payloads (:mod:`.ftp_protocol`).

These modules import only pymavlink and each other: nothing of the service (no ``fleet``, no
other module of the bridge), so ``sim/`` may import them as a real vehicle shares its firmware's
constants (the import-linter contracts in ``pyproject.toml`` hold them to that). This package's
``__init__`` imports nothing.
"""
