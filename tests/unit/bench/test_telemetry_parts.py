"""The telemetry benchmark's bare baseline (framing and selective decode) and the verdicts every
benchmark reports (no timing)."""

from __future__ import annotations

from pymavlink.dialects.v20 import common as mavlink

from bench import report
from bench.telemetry import _frames_in, selective_decode


def frames() -> bytes:
    mav = mavlink.MAVLink(None, srcSystem=7, srcComponent=1)
    out = b"".join(
        bytes(m.pack(mav))
        for m in (
            mavlink.MAVLink_heartbeat_message(2, 12, 0, 0, 3, 3),
            mavlink.MAVLink_attitude_message(1, 0.1, 0.2, 0.3, 0, 0, 0),
            mavlink.MAVLink_sys_status_message(0, 0, 0, 500, 12000, -1, 80, 0, 0, 0, 0, 0, 0),
        )
    )
    return out


class Counting:
    """A pymavlink decoder that counts what it is asked to decode."""

    def __init__(self) -> None:
        self.mav = mavlink.MAVLink(None)
        self.decoded: list[int] = []

    def decode(self, buf: bytearray) -> object:
        msg = self.mav.decode(buf)
        self.decoded.append(msg.get_msgId())
        return msg


def test_bare_framing_counts_every_frame_and_decodes_only_the_used_ones() -> None:
    data = frames() + b"\x00\x01junk"
    assert _frames_in(data) == 3
    dec = Counting()
    used = frozenset({(0, 1), (1, 1)})  # HEARTBEAT, SYS_STATUS from the autopilot
    assert selective_decode(dec, data, used) == (3, 2)
    assert dec.decoded == [0, 1]


def test_verdicts_and_exit_statuses() -> None:
    t = report.Targets("x")
    t.check("a", True, "1")
    assert t.finish() == report.MET and report.LAST["x"].status == report.MET
    t = report.Targets("x")
    t.check("a", True, "1")
    t.check("b", False, "2")
    assert t.finish() == report.MISSED and "b" in report.LAST["x"].summary
    assert report.skipped("x", "no broker") == report.SKIPPED == 77
    assert report.LAST["x"].summary == "no broker"
