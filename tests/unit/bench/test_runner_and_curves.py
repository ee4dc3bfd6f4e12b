"""What every benchmark shares: the runner's closing table and exit status, the growth curve it
writes (merged across split sweeps), where a curve crosses its target, and the sampled profile
(no timing)."""

from __future__ import annotations

import csv
import sys
import time
import types
from pathlib import Path

import pytest

from bench import __main__ as runner
from bench import report
from bench.sampling import Sampler


def fake_bench(monkeypatch: pytest.MonkeyPatch, name: str, status: int, summary: str) -> None:
    def main(argv: list[str]) -> int:
        if status == report.SKIPPED:
            return report.skipped(name, summary)
        t = report.Targets(name)
        t.check("target", status == report.MET, summary)
        return t.finish()

    module = types.ModuleType(f"bench.{name}")
    module.main = main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, f"bench.{name}", module)
    monkeypatch.setitem(runner.BENCHMARKS, name, (name, [], []))


def test_the_runner_ends_with_a_table_and_fails_when_one_missed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_bench(monkeypatch, "fake_met", report.MET, "fine")
    fake_bench(monkeypatch, "fake_missed", report.MISSED, "too slow")
    fake_bench(monkeypatch, "fake_skipped", report.SKIPPED, "no broker here")
    assert runner.main(["fake_met", "fake_skipped"]) == 0  # a skip says why, it does not fail
    assert runner.main(["fake_met", "fake_missed", "fake_skipped"]) == 1
    table = capsys.readouterr().out.split("=== summary")[-1]
    assert "fake_missed         MISSED" in table and "missed: target" in table
    assert "fake_skipped        skipped" in table and "no broker here" in table
    assert "1 met, 1 missed, 0 error, 1 skipped" in table


def test_a_crash_is_an_error_in_the_table(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def main(argv: list[str]) -> int:
        raise RuntimeError("boom")

    module = types.ModuleType("bench.fake_crash")
    module.main = main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bench.fake_crash", module)
    monkeypatch.setitem(runner.BENCHMARKS, "fake_crash", ("fake_crash", [], []))
    assert runner.main(["fake_crash"]) == 1
    assert "RuntimeError: boom" in capsys.readouterr().out.split("=== summary")[-1]


def test_a_split_sweep_merges_into_one_curve(tmp_path: Path) -> None:
    cols = ["size", "p99 s"]
    kw = {"x": "size", "ys": ["p99 s"], "ylabel": "s", "out_dir": tmp_path}
    report.write_curve("c", "t", cols, [[1000, 1.0], [5000, 3.0]], **kw)  # type: ignore[arg-type]
    report.write_curve("c", "t", cols, [[20000, 9.0], [5000, 4.0]], merge=True, **kw)  # type: ignore[arg-type]
    with (tmp_path / "c.csv").open() as f:
        rows = list(csv.reader(f))
    assert rows == [cols, ["1000", "1.0"], ["5000", "4.0"], ["20000", "9.0"]]
    assert (tmp_path / "c.png").stat().st_size > 0
    assert "| 20,000 | 9 |" in (tmp_path / "c.md").read_text()


def test_the_knee_is_where_the_curve_crosses_the_target() -> None:
    assert "about 3,000" in report.knee([(1000, 1.0), (5000, 3.0)], 2.0, "p99", "s")
    assert "below it" in report.knee([(1000, 2.5), (5000, 3.0)], 2.0, "p99", "s")
    assert "stays under" in report.knee([(1000, 0.5), (5000, 1.0)], 2.0, "p99", "s")


def spin(seconds: float) -> int:
    n, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        n += 1
    return n


def test_the_sampler_sees_where_the_main_thread_spends_its_time() -> None:
    sampler = Sampler(interval_s=0.002)
    sampler.on()
    try:
        spin(0.3)
    finally:
        sampler.off()
    assert sampler.samples > 20 and sampler.lost == 0
    text = "\n".join(sampler.lines(10, skip=()))
    assert "(spin)" in text
    taken = sampler.samples
    spin(0.05)  # off: no more samples
    assert sampler.samples == taken
