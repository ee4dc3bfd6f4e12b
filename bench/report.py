"""What every benchmark shares: its verdict and exit status, the machine it ran on, and the
growth curve it writes under ``var/bench/`` (a Markdown table, a CSV and a PNG plot).

Exit statuses (``python -m bench`` reads them):

* :data:`MET` (0): every target was measured and met;
* :data:`MISSED` (1): a target was measured and missed, or could not be measured at its size
  (a ``--quick`` run below the target size misses it: it did not show it);
* :data:`ERROR` (2): the benchmark failed to run (bad arguments, a crash, a child that did not
  start);
* :data:`SKIPPED` (77, the automake convention): it could not run here, for the reason it
  printed (no Solomon instances, no broker, ...).
"""

from __future__ import annotations

import csv
import itertools
import os
import platform
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

MET = 0
MISSED = 1
ERROR = 2
SKIPPED = 77

OUT_DIR = Path(os.environ.get("STREETFLEET_BENCH_DIR", "var/bench"))
"""Where sweeps write their tables and plots (git-ignored; ``docs/bench/`` holds the copies
the README links)."""


@dataclass
class Outcome:
    """The verdict of one benchmark run, for the runner's closing table."""

    status: int
    summary: str
    label: str | None = None
    """What the table shows instead of the status's name (``no target`` for a comparison)."""


def no_target(bench: str, summary: str) -> int:
    """Record a run that has no target (a comparison, a profile); returns :data:`MET` (0)."""
    LAST[bench] = Outcome(MET, summary, label="no target")
    print(f"\nresult: {summary}")
    return MET


LAST: dict[str, Outcome] = {}
"""Outcome of the last run of each benchmark in this process (``python -m bench`` reads it)."""


@dataclass
class Targets:
    """The targets of one run: each named, with what was measured and whether it held."""

    bench: str
    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    def check(self, name: str, ok: bool, measured: str) -> bool:
        self.checks.append((name, ok, measured))
        return ok

    def finish(self) -> int:
        """Print the verdicts; record and return the exit status."""
        print("\ntargets:")
        for name, ok, measured in self.checks:
            print(f"  {'MET   ' if ok else 'MISSED'}  {name}: {measured}")
        missed = [name for name, ok, _ in self.checks if not ok]
        status = MISSED if missed else MET
        summary = "missed: " + "; ".join(missed) if missed else "all targets met"
        LAST[self.bench] = Outcome(status, summary)
        print(f"result: {'MISSED' if missed else 'MET'}")
        return status


def skipped(bench: str, reason: str) -> int:
    """Print why ``bench`` could not run; record and return :data:`SKIPPED`."""
    print(f"SKIPPED: {reason}")
    LAST[bench] = Outcome(SKIPPED, reason)
    return SKIPPED


def failed(bench: str, reason: str) -> int:
    """Print why ``bench`` failed to run; record and return :data:`ERROR`."""
    print(f"ERROR: {reason}", file=sys.stderr)
    LAST[bench] = Outcome(ERROR, reason)
    return ERROR


def machine() -> str:
    """The machine and its load now, for every report."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = "load unknown"
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {load}, Python {sys.version.split()[0]}, "
        f"{platform.system()} {platform.release()}"
    )


def write_curve(
    name: str,
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[float | int | str]],
    *,
    x: str,
    ys: Sequence[str],
    ylabel: str,
    y2: Sequence[str] = (),
    y2label: str = "",
    target: tuple[float, str] | None = None,
    notes: Sequence[str] = (),
    merge: bool = False,
    out_dir: Path | None = None,
) -> list[Path]:
    """Write a sweep as ``<name>.md`` (table), ``<name>.csv`` and ``<name>.png`` (``ys``
    against ``x``; ``y2`` on a second axis; ``target``: a horizontal line (value, label) on the
    first axis) under :data:`OUT_DIR`; returns the paths. With ``merge``, rows of an existing
    ``<name>.csv`` with the same columns are kept for the ``x`` values this sweep did not
    measure (a sweep split over several runs); ``notes`` are written under the table."""
    out = out_dir or OUT_DIR
    out.mkdir(parents=True, exist_ok=True)
    rows = [list(r) for r in rows]
    if merge:
        rows = _merged(out / f"{name}.csv", columns, rows, columns.index(x))
    md = out / f"{name}.md"
    lines = [f"# {title}", "", machine(), ""]
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "---|" * len(columns))
    for row in rows:
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    if notes:
        lines += ["", *notes]
    md.write_text("\n".join(lines) + "\n")
    with (out / f"{name}.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        w.writerows(rows)
    paths = [md, out / f"{name}.csv"]
    png = plot(out / f"{name}.png", title, columns, rows, x=x, ys=ys, ylabel=ylabel, y2=y2,
               y2label=y2label, target=target)  # fmt: skip
    if png is not None:
        paths.append(png)
    for p in paths:
        print(f"wrote {p}")
    return paths


def plot(
    path: Path,
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[float | int | str]],
    *,
    x: str,
    ys: Sequence[str],
    ylabel: str,
    y2: Sequence[str] = (),
    y2label: str = "",
    target: tuple[float, str] | None = None,
) -> Path | None:
    """A small PNG of the curve (matplotlib, dev extra); None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[dev]'): no plot")
        return None
    idx = {c: i for i, c in enumerate(columns)}
    raw = [r[idx[x]] for r in rows]
    categorical = any(isinstance(v, str) for v in raw)
    xs = [float(k) for k in range(len(raw))] if categorical else [float(v) for v in raw]
    fig, ax = plt.subplots(figsize=(6.4, 3.6) if not categorical else (9.6, 3.6), dpi=100)
    style = {"marker": "o"} if not categorical else {"marker": ".", "linewidth": 0.8}
    for col in ys:
        ax.plot(xs, [float(r[idx[col]]) for r in rows], label=col, **style)
    if target is not None:
        ax.axhline(target[0], color="black", linewidth=1, linestyle=":", label=target[1])
    if categorical:
        ax.set_xticks(xs, [str(v) for v in raw], rotation=90, fontsize=6)
    else:
        if len(xs) > 1 and min(xs) > 0 and max(xs) / min(xs) > 20:
            ax.set_xscale("log")
        ax.set_xticks(xs, [f"{v:,.0f}" for v in xs])
        ax.minorticks_off()
    first = [float(r[idx[col]]) for r in rows for col in ys]
    if target is not None:
        first.append(target[0])
    if first and min(first) > 0 and max(first) / min(first) > 100:
        ax.set_yscale("log")  # a curve over decades, and its target, both readable
    else:
        ax.set_ylim(bottom=0)
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if y2:
        ax2 = ax.twinx()
        for k, col in enumerate(y2):
            ax2.plot(xs, [float(r[idx[col]]) for r in rows], marker="s", linestyle="--",
                     color=f"C{len(ys) + k}", label=col)  # fmt: skip
        top = max((float(r[idx[c]]) for r in rows for c in y2), default=0.0)
        ax2.set_ylim(0, top * 1.25 if top > 0 else 1.0)
        ax2.set_ylabel(y2label)
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, fontsize=8, loc="best")
    ax.set_title("\n".join(textwrap.wrap(title, 80)), fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _merged(
    path: Path, columns: Sequence[str], rows: list[list[float | int | str]], xi: int
) -> list[list[float | int | str]]:
    if not path.exists():
        return rows
    with path.open(newline="") as f:
        old = list(csv.reader(f))
    if not old or old[0] != list(columns):
        return rows
    new_x = {float(r[xi]) for r in rows}
    kept: list[list[float | int | str]] = [
        [_number(v) for v in r] for r in old[1:] if r and float(r[xi]) not in new_x
    ]
    return sorted(kept + rows, key=lambda r: float(r[xi]))


def _number(v: str) -> float | int | str:
    for kind in (int, float):
        try:
            return kind(v)
        except ValueError:
            pass
    return v


def knee(points: Sequence[tuple[float, float]], limit: float, what: str, unit: str) -> str:
    """Where ``(size, value)`` points cross ``limit`` (linear between the measured sizes)."""
    pts = sorted(points)
    if not pts:
        return "no sizes measured"
    if pts[0][1] >= limit:
        return (
            f"{what} is {pts[0][1]:,.3g} {unit} already at {pts[0][0]:,.0f}, the smallest size "
            f"measured: the knee is below it"
        )
    for (x0, y0), (x1, y1) in itertools.pairwise(pts):
        if y1 >= limit > y0:
            at = x0 + (limit - y0) * (x1 - x0) / (y1 - y0)
            return (
                f"{what} crosses {limit:g} {unit} between {x0:,.0f} ({y0:,.3g}) and "
                f"{x1:,.0f} ({y1:,.3g}): about {at:,.0f} by linear interpolation"
            )
    return f"{what} stays under {limit:g} {unit} up to {pts[-1][0]:,.0f}, the largest size measured"


def _fmt(v: float | int | str) -> str:
    if isinstance(v, float):
        if abs(v) < 100:
            return f"{v:,.3g}"
        return f"{v:,.0f}" if v == int(v) else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by the nearest-rank rule (nan when empty)."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-q * len(s) // 1)) - 1))
    return s[k]
