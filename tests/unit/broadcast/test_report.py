"""The proof-of-coverage report, checked against flights whose outcome is known."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from PIL import Image

from fleet.geo import LocalFrame
from fleet.speaker import PlaybackRecord, PlaybackSample
from missions.broadcast.acoustics import SpeakerModel
from missions.broadcast.report import build_report, render_png

FRAME = LocalFrame(22.54, 114.06)
T0 = 1_700_000_000.0
SQUARE_XY = [(-100.0, -100.0), (100.0, -100.0), (100.0, 100.0), (-100.0, 100.0)]
SQUARE = [FRAME.to_latlon(x, y) for x, y in SQUARE_XY]
MODEL = SpeakerModel()
S = MODEL.audible_slant_range_m()


def record(
    seq: int,
    path: list[tuple[float, float]],
    start: float,
    duration: float,
    *,
    completed: bool = True,
    alt: float = 50.0,
    volume: int = 100,
    payload: str = "SPK-1",
) -> PlaybackRecord:
    """A play along ``path`` (local x, y), samples spread evenly over its duration."""
    n = len(path)
    samples = []
    for i, (x, y) in enumerate(path):
        lat, lon = FRAME.to_latlon(x, y)
        t = T0 + start + (duration * i / (n - 1) if n > 1 else 0.0)
        samples.append(PlaybackSample(t, lat, lon, alt))
    return PlaybackRecord(
        payload_id=payload,
        session_id="s1",
        seq=seq,
        clip_sha256="ab" * 32,
        started_at=T0 + start,
        ended_at=T0 + start + duration,
        completed=completed,
        volume=volume,
        samples=tuple(samples),
        end_reason="completed" if completed else "left_area",
    )


def test_hovering_broadcast_covers_a_disc() -> None:
    recs = [
        record(0, [(0, 0), (0, 0)], 0, 10),
        record(1, [(0, 0), (0, 0)], 10, 10),
        record(2, [(0, 0), (0, 0)], 20, 4, completed=False),
    ]
    rep = build_report(SQUARE, FRAME, recs, repeats=2, model=MODEL, cell_m=2.0)
    radius = math.sqrt(S * S - 50.0**2)
    disc = math.pi * radius**2 / 200.0**2
    assert rep.covered_fraction == pytest.approx(disc, rel=0.03)
    assert rep.heard_once_fraction == pytest.approx(rep.covered_fraction)
    assert rep.histogram() == {0: int((rep.counts == 0).sum()), 2: int((rep.counts == 2).sum())}
    assert (rep.plays_total, rep.plays_completed, rep.plays_cut) == (3, 2, 1)
    assert rep.started_at == T0 and rep.ended_at == T0 + 24
    assert rep.sounding_s == pytest.approx(24.0)
    assert rep.no_playback_outside and rep.samples_total == 6
    assert rep.missing_seqs == ()


def test_sweep_covers_the_strip_it_stays_in_range_of() -> None:
    # six 10 s plays sweeping west to east along y = 0 at 20 m/s... too fast to be heard in
    # full by anyone: the drone moves 200 m per play, more than the audible diameter
    fast = [record(i, [(-100 + 0, 0), (100, 0)], 10 * i, 10) for i in range(2)]
    assert build_report(SQUARE, FRAME, fast, 1, MODEL).covered_fraction == 0.0
    # slow: 10 m per play; a cell hears a play when both ends are within range
    slow = [record(i, [(-100 + 10 * i, 0), (-90 + 10 * i, 0)], 10 * i, 10) for i in range(20)]
    rep = build_report(SQUARE, FRAME, slow, 1, MODEL, cell_m=2.0)
    radius = math.sqrt(S * S - 50.0**2)
    # interior cells within the strip |y| <= sqrt(r² - 5²) hear; ends too thanks to the radius
    g = rep.grid
    inside_strip = np.abs(g.y) <= math.sqrt(radius**2 - 5.0**2) - 1.0
    assert np.all(rep.counts[inside_strip] >= 1)
    assert np.all(rep.counts[np.abs(g.y) > radius + 1.0] == 0)
    assert rep.covered_fraction == pytest.approx(inside_strip.mean(), abs=0.03)


def test_quieter_volume_shrinks_what_is_heard() -> None:
    loud = build_report(SQUARE, FRAME, [record(0, [(0, 0), (0, 0)], 0, 10, alt=30)], 1, MODEL)
    soft = build_report(
        SQUARE, FRAME, [record(0, [(0, 0), (0, 0)], 0, 10, alt=30, volume=70)], 1, MODEL
    )
    assert 0 < soft.covered_fraction < loud.covered_fraction


def test_playback_outside_is_detected_from_the_records() -> None:
    out = record(0, [(0, 0), (90, 0), (110, 0)], 0, 10, completed=False)
    rep = build_report(SQUARE, FRAME, [out], 1, MODEL)
    assert not rep.no_playback_outside
    assert rep.samples_outside == 1
    assert rep.max_outside_m == pytest.approx(10.0, abs=0.05)
    # the path crosses x = 100 half way through the last 5 s: 2.5 s outside
    assert rep.playback_outside_s == pytest.approx(2.5, abs=0.15)


def test_playback_outside_between_samples_is_detected_too() -> None:
    # a notched polygon: both samples inside, the straight path between them is not
    notched = [
        (-100, -100),
        (100, -100),
        (100, 100),
        (10, 100),
        (10, 0),
        (-10, 0),
        (-10, 100),
        (-100, 100),
    ]
    verts = [FRAME.to_latlon(x, y) for x, y in notched]
    rep = build_report(verts, FRAME, [record(0, [(-50, 50), (50, 50)], 0, 10)], 1, MODEL)
    assert rep.samples_outside == 0
    assert rep.playback_outside_s == pytest.approx(2.0, abs=0.15)  # 20 m of 100 m at 10 m/s
    assert not rep.no_playback_outside


def test_missing_records_are_listed_and_duplicates_dropped() -> None:
    recs = [record(s, [(0, 0), (0, 0)], 10 * s, 10) for s in (0, 1, 3, 6)]
    recs.append(recs[1])
    recs.append(record(0, [(50, 50), (50, 50)], 0, 10, payload="SPK-2"))
    rep = build_report(SQUARE, FRAME, recs, 1, MODEL)
    assert rep.missing_seqs == (2, 4, 5)
    assert rep.plays_total == 5
    assert rep.payload_ids == ("SPK-1", "SPK-2")


def test_report_data_and_png_map() -> None:
    recs = [record(i, [(-40, 0), (-40, 0)], 10 * i, 10, alt=30) for i in range(2)]
    track = [(T0 + t, *FRAME.to_latlon(-40 + t, 0), 30.0) for t in range(0, 60, 5)]
    rep = build_report(SQUARE, FRAME, recs, repeats=2, model=MODEL, track=track)
    data = rep.to_dict()
    json.dumps(data)
    assert data["covered_fraction"] == pytest.approx(rep.covered_fraction, abs=1e-4)
    assert len(data["grid"]["cells"]) == len(rep.grid)
    assert data["outside"]["no_playback_outside"] is True
    assert data["started_at"].startswith("2023-11-14T22:13:20")
    png = render_png(rep, size=400)
    img = Image.open(io.BytesIO(png)).convert("RGB")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = img.size
    assert 300 < width <= 460 and height > width  # map plus legend

    def pixel(x: float, y: float) -> tuple[int, int, int]:
        # the map spans the polygon and the track: x -100..100, y -100..100
        scale = (400 - 40) / 200.0
        return img.getpixel((int(20 + (x + 100) * scale), int(20 + (100 - y) * scale)))  # type: ignore[return-value]

    heard = pixel(-40, 20)
    silent = pixel(80, 80)
    assert heard[1] > heard[0]  # green: heard twice
    assert silent[0] > 200 and silent[1] < 80  # red: heard nothing


def test_png_draws_each_drones_track_apart() -> None:
    # two drones flying at the same time, their tracks one after the other in the report
    a = [(T0 + t, *FRAME.to_latlon(-80 + t, -50), 30.0) for t in range(0, 61, 2)]
    b = [(T0 + t, *FRAME.to_latlon(20 + t, 50), 30.0) for t in range(0, 61, 2)]
    rep = build_report(SQUARE, FRAME, [], repeats=1, model=MODEL, track=[*a, *b])
    img = Image.open(io.BytesIO(render_png(rep, size=400))).convert("RGB")
    scale = (400 - 40) / 200.0

    def blue_near(x: float, y: float) -> bool:  # a 1-pixel line, rounded either way
        u, v = int(20 + (x + 100) * scale), int(20 + (100 - y) * scale)
        return any(img.getpixel((u, v + dv)) == (33, 102, 172) for dv in range(-2, 3))

    assert blue_near(-50, -50) and blue_near(50, 50)
    # no line joins the end of one track to the start of the other (through the centre)
    assert not blue_near(0, 0) and not blue_near(-10, -25)
