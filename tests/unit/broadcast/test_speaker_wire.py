"""The speaker protocol's wire format, link URLs and translation to the domain."""

from __future__ import annotations

import json

import pytest

from firmware_bridges.speaker import translate, wire
from firmware_bridges.speaker.address import SpeakerAddress, link_url
from fleet.errors import CommandRejected, ConfigError, VehicleError
from fleet.speaker import BroadcastArea, ClipRef, PlaySpec, SpeakerState, SpeakerStatus

SHA = "0123456789abcdef" * 4
TS = 1_700_000_000_000


def raw(**fields: object) -> bytes:
    return json.dumps({"version": "1.0", "timestamp": TS, **fields}).encode()


def test_topics() -> None:
    assert wire.topic("speaker", "SPK-1", wire.Channel.STATE) == "speaker/v1/SPK-1/state"
    assert wire.split_topic("a/b", "a/b/v1/SPK-1/playback") == ("SPK-1", wire.Channel.PLAYBACK)
    assert wire.split_topic("a/b", "a/b/v2/SPK-1/playback") is None
    assert wire.split_topic("a/b", "a/b/v1/SPK-1/nonsense") is None
    assert wire.split_topic("a/b", "a/b/v1/SPK+1/state") is None
    assert wire.split_topic("a/b", "x/b/v1/SPK-1/state") is None
    with pytest.raises(ValueError):
        wire.check_namespace("a/#")


def test_commands_decode_with_their_data() -> None:
    cmd, data = wire.decode_command(
        raw(
            tid="t1",
            method="play_area",
            data={
                "area": [[22.5, 114.0], [22.5, 114.1], [22.6, 114.0]],
                "repeats": 3,
                "period_ms": 12000,
            },
        )
    )
    assert cmd.tid == "t1" and isinstance(data, wire.PlayAreaData)
    assert data.repeats == 3 and data.period_ms == 12000 and data.min_rel_alt_m == 0.0
    _, stop = wire.decode_command(raw(tid="t2", method="play_stop"))
    assert isinstance(stop, wire.PlayStopData)
    # unknown fields are ignored (a later minor version may add some)
    _, vol = wire.decode_command(
        raw(tid="t3", method="volume_set", data={"volume": 40, "ramp_ms": 5})
    )
    assert isinstance(vol, wire.VolumeSetData) and vol.volume == 40


@pytest.mark.parametrize(
    ("payload", "code", "tid"),
    [
        (b"\xff\xfe", "bad_json", None),
        (b"{not json", "bad_json", None),
        (b"[1, 2]", "bad_message", None),
        (
            b'{"version": "1.0", "timestamp": 1, "tid": "t", "method": "x", "v": NaN}',
            "bad_json",
            None,
        ),
        (raw(tid="t9", method="dance"), "unknown_method", "t9"),
        (
            json.dumps(
                {"version": "2.0", "timestamp": TS, "tid": "t8", "method": "play_stop"}
            ).encode(),
            "unsupported_version",
            "t8",
        ),
        (raw(method="play_stop"), "bad_message", None),
        (raw(tid="t7", method="volume_set", data={"volume": 101}), "bad_request", "t7"),
        (
            raw(tid="t6", method="clip_load", data={"url": "ftp://x/y.wav", "sha256": SHA}),
            "bad_request",
            "t6",
        ),
        (
            raw(
                tid="t5", method="clip_load", data={"url": "http://x/y.wav", "sha256": SHA.upper()}
            ),
            "bad_request",
            "t5",
        ),
        (
            raw(tid="t4", method="play_area", data={"area": [[22.5, 114.0], [22.5, 114.1]]}),
            "bad_request",
            "t4",
        ),
        (
            raw(
                tid="t3",
                method="play_area",
                data={"area": [[95, 114.0], [22.5, 114.1], [22.6, 114.0]]},
            ),
            "bad_request",
            "t3",
        ),
    ],
)
def test_bad_commands_say_why(payload: bytes, code: str, tid: str | None) -> None:
    with pytest.raises(wire.WireError) as err:
        wire.decode_command(payload)
    assert err.value.code == code
    assert err.value.tid == tid
    assert code in wire.RESULT_OF_CODE


def test_playback_records_are_checked() -> None:
    good = {
        "session_id": "s",
        "seq": 0,
        "clip_sha256": SHA,
        "started_at": TS,
        "ended_at": TS + 5000,
        "completed": True,
        "end_reason": "completed",
        "volume": 80,
        "samples": [[TS, 22.5, 114.0, 60.0], [TS + 5000, 22.5001, 114.0, 60.0]],
    }
    msg = wire.decode(wire.PlaybackMsg, raw(**good))
    rec = translate.record("SPK-1", msg)
    assert rec.started_at == TS / 1000 and rec.duration_s == pytest.approx(5.0)
    assert rec.samples[1].lat == 22.5001 and rec.volume == 80 and rec.end_reason == "completed"
    for bad in (
        {"ended_at": TS - 1},
        {"samples": []},
        {"samples": [[TS + 10, 22.5, 114.0, 60.0], [TS, 22.5, 114.0, 60.0]]},
        {"samples": [[TS, 122.5, 114.0, 60.0]]},
        {"end_reason": "bored"},
        {"seq": -1},
    ):
        with pytest.raises(wire.WireError):
            wire.decode(wire.PlaybackMsg, raw(**{**good, **bad}))


def test_state_updates_the_domain_status() -> None:
    msg = wire.decode(
        wire.StateMsg,
        raw(
            state="playing",
            volume=90,
            clip={"sha256": SHA, "duration_ms": 8500, "size_bytes": 1000},
            session={
                "session_id": "s1",
                "repeats": 0,
                "plays_started": 3,
                "plays_completed": 2,
                "inside_area": True,
            },
            position={"lat": 22.5, "lon": 114.0, "rel_alt": 59.5},
            last_seq=7,
        ),
    )
    status = SpeakerStatus()
    translate.update_status(status, msg)
    assert status.state is SpeakerState.PLAYING and status.volume == 90
    assert status.clip is not None and status.clip.duration_s == 8.5
    assert (status.session_id, status.plays_started, status.plays_completed) == ("s1", 3, 2)
    assert status.inside_area and status.extra["last_seq"] == 7


def test_commands_from_domain_requests() -> None:
    area = BroadcastArea(((22.5, 114.0), (22.5, 114.1), (22.6, 114.0), (22.5, 114.0)), 40.0)
    assert len(area.vertices) == 3  # closing vertex dropped
    data = translate.play_area(PlaySpec(area, repeats=2, period_s=12.5))
    assert data.period_ms == 12500 and data.min_rel_alt_m == 40.0 and data.repeats == 2
    cmd = translate.command("t1", wire.Method.PLAY_AREA, data, TS / 1000)
    again, parsed = wire.decode_command(wire.encode(cmd))
    assert again == cmd and parsed == data
    clip = translate.clip_load(ClipRef("http://127.0.0.1:8000/clips/x.wav", SHA))
    assert clip.sha256 == SHA
    assert translate.loaded_clip({"duration_ms": 4000, "size_bytes": 9}, SHA).duration_s == 4.0
    with pytest.raises(VehicleError):
        translate.loaded_clip({"duration_ms": -1}, SHA)


def test_refusals_become_command_rejected() -> None:
    reply = wire.ReplyMsg(
        timestamp=TS,
        tid="t",
        method="clip_load",
        result=int(wire.Result.CHECKSUM_MISMATCH),
        error=wire.ErrorInfo(code="checksum_mismatch", message="expected a, got b"),
    )
    err = translate.rejection("SPK-1", reply)
    assert isinstance(err, CommandRejected)
    assert err.fields["code"] == "checksum_mismatch" and err.fields["result"] == "checksum_mismatch"
    assert "expected a, got b" in str(err)


def test_link_urls() -> None:
    a = SpeakerAddress.parse(
        "speaker+mqtt://user:secret@10.0.0.5:1884/SPK-7?vehicle=drone-7&ns=site/a&state_timeout=3"
    )
    assert a.broker_url == "mqtt://user:secret@10.0.0.5:1884"
    assert a.payload_id == "SPK-7" and a.host_vehicle == "drone-7" and a.namespace == "site/a"
    assert a.state_timeout_s == 3.0 and "secret" not in a.display_url
    assert a.covers("SPK-7") and not a.covers("SPK-8")
    assert ("site/a/v1/SPK-7/playback", 1) in a.subscriptions()
    assert ("site/a/v1/SPK-7/state", 0) in a.subscriptions()
    every = SpeakerAddress.parse("speaker+mqtts://broker.example:8883/?ca=/etc/ca.pem")
    assert every.payload_id is None and every.covers("anything")
    assert every.broker_url == "mqtts://broker.example:8883?ca=/etc/ca.pem"
    own = SpeakerAddress.parse("speaker+mqtt:///SPK-1")
    assert own.broker_url is None and own.payload_id == "SPK-1"
    assert link_url("mqtt://127.0.0.1:1883", "SPK-2", ns="t-1/speaker") == (
        "speaker+mqtt://127.0.0.1:1883/SPK-2?ns=t-1/speaker"
    )
    for bad in (
        "mqtt://host/SPK-1",
        "speaker+mqtt://host/a/b",
        "speaker+mqtt://host/SPK#1",
        "speaker+mqtt://host/?vehicle=drone-1",
        "speaker+mqtt://host/SPK-1?state_timeout=-1",
        "speaker+mqtt://host/SPK-1?ns=a/%2B",
        "speaker+mqtt://host:99999/SPK-1",
    ):
        with pytest.raises(ConfigError):
            SpeakerAddress.parse(bad)
