"""The broadcast and clip routes of the running service (uvicorn, SQLite, embedded broker): what
staff send, what they get back, and every refusal with the field it names. No drone flies here
(see ``tests/e2e/test_broadcast_flight.py``)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from fleet.clock import AcceleratedClock
from fleet.worldfile import load_world
from tests.service import WORLDS, running_service, service_settings
from tests.support import eventually
from tests.unit.broadcast.clipserver import tone_wav

pytestmark = [pytest.mark.slow]

needs_espeak = pytest.mark.usefixtures("espeak_ng")
"""espeak-ng installed (skipped with the reason when not; fails under CI=true)."""


def settings_for(tmp_path: Path, **broadcast: Any) -> Any:
    return service_settings(tmp_path, broadcast={"clip_dir": str(tmp_path / "clips"), **broadcast})


def problem_field(r: Any) -> str:
    assert r.headers["content-type"] == "application/problem+json", r.text
    return str(r.json().get("field"))


async def test_clips_are_uploaded_checked_and_served_by_their_sha256(tmp_path: Path) -> None:
    async with running_service(settings_for(tmp_path)) as svc:
        http = svc.http
        wav = tone_wav(2.5)
        sha = hashlib.sha256(wav).hexdigest()
        r = await http.post("/v1/clips", content=wav, headers={"content-type": "audio/wav"})
        assert r.status_code == 201, r.text
        clip = r.json()
        assert clip["sha256"] == sha and clip["duration_s"] == pytest.approx(2.5, abs=0.01)
        assert clip["sample_rate"] == 16000 and clip["channels"] == 1
        assert clip["url"].endswith(f"/v1/clips/{sha}.wav")
        again = await http.post("/v1/clips", content=wav, headers={"content-type": "audio/wav"})
        assert again.status_code == 201 and again.json()["sha256"] == sha
        got = await http.get(f"/v1/clips/{sha}.wav")
        assert got.status_code == 200 and got.content == wav
        assert got.headers["content-type"] == "audio/wav" and got.headers["etag"] == f'"{sha}"'
        assert (await http.get(f"/v1/clips/{sha}")).json()["size_bytes"] == len(wav)
        # refusals
        bad = await http.post("/v1/clips", content=b"RIFF....not a wave")
        assert bad.status_code == 422 and problem_field(bad) == "clip"
        assert "not a PCM WAV" in bad.json()["detail"]
        mp3 = await http.post("/v1/clips", content=wav, headers={"content-type": "audio/mpeg"})
        assert mp3.status_code == 415
        assert (await http.get("/v1/clips/" + "0" * 64 + ".wav")).status_code == 404
        assert (await http.get("/v1/clips/../../etc/passwd")).status_code == 404
        assert (await http.get("/v1/clips/not-a-sha.wav")).status_code == 404
        audit = await svc.runtime.store.audit_log()
        assert any(a.action == "clip.upload" and a.object_id == sha for a in audit)


@needs_espeak
async def test_a_broadcast_request_is_spoken_checked_and_stored(tmp_path: Path) -> None:
    world = load_world(WORLDS / "shatou.geojson")
    async with running_service(settings_for(tmp_path)) as svc:
        http = svc.http
        body = {
            "area": {"community_id": "C03"},
            "message": {"text": "核酸检测今天上午九点在北门。", "language": "cmn"},
            "repeats": 3,
            "volume": 90,
            "priority": "standard",
        }
        r = await http.post("/v1/broadcasts", json=body, headers={"Idempotency-Key": "k-1"})
        assert r.status_code == 201, r.text
        b = r.json()
        assert r.headers["location"] == f"/v1/broadcasts/{b['id']}"
        assert b["kind"] == "broadcast" and b["community_id"] == "C03"
        assert b["state"] == "approved" and b["deadline"] is not None
        assert b["repeats"] == 3 and b["volume"] == 90 and b["schedule"] == {"kind": "now"}
        assert b["message"]["language"] == "cmn"
        assert b["resolved_area"]["community_ids"] == ["C03"]
        assert b["clip"]["source"] == "tts" and b["clip"]["duration_s"] > 1.0
        assert b["preview"]["predicted_coverage"] >= 0.95 and b["preview"]["drones_needed"] >= 1
        assert b["occurrences"] == []
        wav = await http.get(f"/v1/clips/{b['clip']['sha256']}.wav")
        assert hashlib.sha256(wav.content).hexdigest() == b["clip"]["sha256"]
        # the same text in the same voice is the same clip
        spoken = await http.post(
            "/v1/clips/speech", json={"text": body["message"]["text"], "language": "cmn"}
        )
        assert spoken.status_code == 201 and spoken.json()["sha256"] == b["clip"]["sha256"]
        # a retried POST gets the first request back
        again = await http.post("/v1/broadcasts", json=body, headers={"Idempotency-Key": "k-1"})
        assert again.status_code == 200 and again.json()["id"] == b["id"]
        # it is a request like any other, and says why it waits
        generic = (await http.get(f"/v1/requests/{b['id']}")).json()
        assert generic["kind"] == "broadcast"

        async def waits() -> bool:
            one = (await http.get(f"/v1/broadcasts/{b['id']}")).json()
            return any("carrying a speaker" in e["reason"] for e in one["events"])

        await eventually(waits, timeout=15, message="the dispatcher says why it waits")
        listed = (await http.get("/v1/broadcasts", params={"community_id": "C03"})).json()
        assert [x["id"] for x in listed] == [b["id"]]
        nothing = await http.get(f"/v1/requests/{b['id']}/report")
        assert nothing.status_code == 404
        # a drawn polygon inside C04: the request is for C04
        c04 = world.community("C04")
        lat0, lon0 = c04.drop_point.lat, c04.drop_point.lon
        d = 0.0006
        drawn = {
            **body,
            "area": {
                "vertices": [
                    [lat0 - d, lon0 - d],
                    [lat0 - d, lon0 + d],
                    [lat0 + d, lon0 + d],
                    [lat0 + d, lon0 - d],
                ]
            },
        }
        r = await http.post("/v1/broadcasts", json=drawn)
        assert r.status_code == 201, r.text
        assert r.json()["community_id"] == "C04"
        assert r.json()["resolved_area"]["name"] == "drawn area"


@needs_espeak
@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"area": {"community_id": "NOPE"}}, 422, "area.community_id"),
        ({"area": {"community_id": "C03", "vertices": [[0, 0], [0, 1], [1, 1]]}}, 422, "area"),
        ({"message": {"text": "hello"}}, 422, "message"),
        ({"message": {"text": "hello", "language": "fr"}}, 422, "message.language"),
        ({"message": {"text": "   ", "language": "en"}}, 422, "message.text"),
        ({"message": {"text": "bell \u0007", "language": "en"}}, 422, "message.text"),
        ({"message": {"clip_sha256": "a" * 64}}, 422, "message.clip_sha256"),
        ({"volume": 0}, 422, "volume"),
        ({"repeats": 11}, 422, "repeats"),
        ({"period_s": 1.0}, 422, "period_s"),
        ({"schedule": {"kind": "at", "times": ["2020-01-01T09:00:00+08:00"]}}, 422, None),
        ({"schedule": {"kind": "at", "times": ["2099-01-01T09:00:00"]}}, 422, None),
        ({"schedule": {"kind": "weekly"}}, 422, None),
        (
            {
                "schedule": {
                    "kind": "recurring",
                    "times_of_day": ["09:00"],
                    "start_date": "2099-01-10",
                    "end_date": "2099-01-01",
                }
            },
            422,
            "schedule.end_date",
        ),
        ({"community_id": "C05"}, 422, "community_id"),
        ({"area": {"vertices": [[22.0, 113.0], [22.0, 113.01], [22.01, 113.01]]}}, 422, None),
    ],
)
async def test_bad_broadcast_requests_name_the_field(
    tmp_path: Path, change: dict[str, Any], status: int, field: str | None
) -> None:
    body: dict[str, Any] = {
        "area": {"community_id": "C03"},
        "message": {"text": "Testing at nine.", "language": "en"},
    }
    body.update(change)
    async with running_service(settings_for(tmp_path)) as svc:
        r = await svc.http.post("/v1/broadcasts", json=body)
        assert r.status_code == status, r.text
        if field is not None:
            assert problem_field(r) == field, r.json()
        assert (await svc.http.get("/v1/broadcasts")).json() == []  # nothing stored


async def test_without_the_speech_engine_text_is_refused_and_clips_still_work(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path, espeak_executable=str(tmp_path / "no-espeak-ng"))
    async with running_service(settings) as svc:
        http = svc.http
        body = {
            "area": {"community_id": "C03"},
            "message": {"text": "Testing at nine.", "language": "en"},
        }
        r = await http.post("/v1/broadcasts", json=body)
        assert r.status_code == 503, r.text
        p = r.json()
        assert p["type"] == "/problems/speech-unavailable" and p["package"] == "espeak-ng"
        assert "apt-get install espeak-ng" in p["detail"]
        r = await http.post("/v1/clips/speech", json={"text": "hi", "language": "en"})
        assert r.status_code == 503
        wav = tone_wav(3.0)
        clip = (await http.post("/v1/clips", content=wav)).json()
        r = await http.post(
            "/v1/broadcasts",
            json={**body, "message": {"clip_sha256": clip["sha256"], "language": "yue"}},
        )
        assert r.status_code == 201, r.text
        assert r.json()["clip"]["source"] == "upload"


async def test_an_area_that_cannot_be_covered_is_refused_with_the_reason(
    tmp_path: Path,
) -> None:
    # a speaker audible only a few metres around at the flight altitude
    settings = settings_for(tmp_path, speaker={"source_level_db": 90.0})
    async with running_service(settings) as svc:
        clip = (await svc.http.post("/v1/clips", content=tone_wav(2.0))).json()
        r = await svc.http.post(
            "/v1/broadcasts",
            json={"area": {"community_id": "C03"}, "message": {"clip_sha256": clip["sha256"]}},
        )
        assert r.status_code == 422, r.text
        assert r.json()["type"] == "/problems/planning"
        assert "cannot be covered" in r.json()["detail"]


async def test_timed_broadcasts_wait_for_their_time_and_are_missed_without_a_drone(
    tmp_path: Path,
) -> None:
    clock = AcceleratedClock(20.0)
    settings = service_settings(
        tmp_path,
        clock={"mode": "accelerated", "speed": 20.0},
        broadcast={"clip_dir": str(tmp_path / "clips"), "lead_s": 0, "max_delay_s": 30},
    )
    async with running_service(settings, clock) as svc:
        http = svc.http
        clip = (await http.post("/v1/clips", content=tone_wav(2.0))).json()
        now = clock.now()
        soon, later = now + timedelta(seconds=20), now + timedelta(hours=2)
        body: dict[str, Any] = {
            "area": {"community_id": "C02"},
            "message": {"clip_sha256": clip["sha256"]},
            "schedule": {"kind": "at", "times": [soon.isoformat(), later.isoformat()]},
        }
        r = await http.post("/v1/broadcasts", json=body)
        assert r.status_code == 201, r.text
        rid = r.json()["id"]

        # no drone carries a speaker: the first time passes and is recorded missed, with why
        async def first_missed() -> dict[str, Any] | None:
            b = (await http.get(f"/v1/broadcasts/{rid}")).json()
            return b if b["occurrences"] else None

        b = await eventually(first_missed, timeout=30, message="the first occurrence is missed")
        [entry] = b["occurrences"]
        assert entry["state"] == "missed" and "carrying a speaker" in entry["reason"]
        assert b["state"] == "approved" and b["missions"] == []
        reasons = [e["reason"] for e in b["events"]]
        assert any("waits for a free drone carrying a speaker payload" in x for x in reasons)

        async def waits_for_the_second() -> bool:
            one = (await http.get(f"/v1/broadcasts/{rid}")).json()
            return any("waits for its next broadcast at" in e["reason"] for e in one["events"])

        await eventually(waits_for_the_second, timeout=15, message="it waits for the second")
