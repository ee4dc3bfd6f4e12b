"""The sim's component metadata: one table describing every event, served like PX4's."""

from __future__ import annotations

import json
import lzma
import re
from pathlib import Path

from pymavlink.dialects.v20 import common as mavlink

from firmware_bridges.mavlink.wire import component_info, px4_events
from firmware_bridges.mavlink.wire.component_info import COMP_METADATA_TYPE_EVENTS
from firmware_bridges.mavlink.wire.event_metadata import EventMetadata
from sim.drone import metadata
from tests.unit.sim.harness import fleet_and_gcs

SIM_SOURCES = Path(metadata.__file__).parent
_EMITTED = re.compile(r"""["']((?:navigator|commander|check)_[a-z0-9_]+)["']""")


def test_every_event_the_sim_can_emit_is_described() -> None:
    names = {s.name for s in metadata.SIM_EVENTS}
    # the PX4 templates the sim sends with EventLog.emit, and every event name in sim/drone
    assert {t.name for t in px4_events.KNOWN_EVENTS.values()} <= names
    for source in sorted(SIM_SOURCES.glob("*.py")):
        for name in _EMITTED.findall(source.read_text()):
            assert name in names, f"{source.name} emits {name}, missing from SIM_EVENTS"
    md = EventMetadata.from_document(metadata.events_json())
    assert len(md) == len(metadata.SIM_EVENTS)  # no id collisions, every type resolved
    for check in metadata.SIM_CHECKS.values():
        d = md.by_name(check.name)
        assert d is not None and d.group == check.group
        assert [a.name for a in d.arguments[:2]] == ["modes", "health_component_index"]
    summary = md.by_name(px4_events.ARMING_SUMMARY_EVENT)
    assert summary is not None and summary.type == "summary" and summary.group == "arming_check"
    assert md.supports(px4_events.HEALTH_AND_ARMING_CHECK_PROTOCOL, component=1)


def test_files_and_crcs_are_what_px4_would_build() -> None:
    f = metadata.files()
    general_raw = lzma.decompress(f.files[metadata.GENERAL_PATH])
    events_raw = lzma.decompress(f.files[metadata.EVENTS_PATH])
    assert component_info.crc32(general_raw) == f.general_crc
    assert component_info.crc32(events_raw) == f.events_crc
    entries = component_info.parse_general(f.files[metadata.GENERAL_PATH])
    events = entries[COMP_METADATA_TYPE_EVENTS]
    assert events.uri == "mftp://etc/extras/all_events.json.xz"
    assert events.file_crc == f.events_crc
    assert json.loads(events_raw) == metadata.events_json()
    assert metadata.files() is f  # built once per process


async def test_component_metadata_is_answered_on_request() -> None:
    async with fleet_and_gcs(1) as (_fleet, gcs):
        f = metadata.files()
        since = gcs.mark()
        ack = await gcs.command(mavlink.MAV_CMD_REQUEST_MESSAGE, 397)
        assert ack.result == mavlink.MAV_RESULT_ACCEPTED
        msg = await gcs.wait_for("COMPONENT_METADATA", since=since, timeout=5)
        assert (msg.uri, msg.file_crc) == (
            "mftp://etc/extras/component_general.json.xz",
            f.general_crc,
        )
        since = gcs.mark()
        ack = await gcs.command(mavlink.MAV_CMD_REQUEST_MESSAGE, 395)
        assert ack.result == mavlink.MAV_RESULT_ACCEPTED
        info = await gcs.wait_for("COMPONENT_INFORMATION", since=since, timeout=5)
        assert component_info.general_reference(info) == (msg.uri, f.general_crc)
