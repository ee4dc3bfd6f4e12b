"""Run every benchmark in turn: ``python -m bench [--quick] [name ...]`` (``make bench``).

Each benchmark measures its own baseline in the same run, prints its figures and its targets,
and exits with its verdict (``bench.report``: 0 met, 1 missed, 2 error, 77 skipped). This
runner sequences them and ends with a table of met, missed, skipped and failed benchmarks; it
exits 1 if any missed or failed (skipped ones do not fail the run, they say why). ``--quick``
passes each benchmark's shorter settings for a smoke run: below the target sizes, so its
targets are reported missed (a quick run does not show them).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback

from bench import report

BENCHMARKS: dict[str, tuple[str, list[str], list[str]]] = {
    "telemetry": ("telemetry", [], ["--drones", "50", "--duration", "5"]),
    "vans": ("vans", [], ["--vans", "100", "--seconds", "10"]),
    "routing": ("routing", [], ["--instances", "C101,R101,RC101", "--seconds", "2"]),
    # the target: rounds over 5,000 open requests (the service alone: each round is long)
    "dispatch": (
        "dispatch",
        ["--methods", "service"],
        ["--methods", "service", "--requests", "300", "--vehicles", "12",
         "--round-every", "900"],
    ),
    # the baselines, on a day small enough for a round every 2 minutes
    "dispatch-baselines": (
        "dispatch",
        ["--no-target", "--requests", "1000", "--vehicles", "20", "--backlog", "0.4",
         "--round-every", "120"],
        ["--no-target", "--requests", "200", "--communities", "12", "--vehicles", "8",
         "--backlog", "0.4", "--round-every", "900"],
    ),
    # the control API under wrk, against bare FastAPI answering the same JSON
    "api": ("api", [], ["--seconds", "3"]),
}  # fmt: skip
"""Benchmark name → (module, full-run arguments, quick-run arguments)."""

LABEL = {
    report.MET: "met",
    report.MISSED: "MISSED",
    report.ERROR: "ERROR",
    report.SKIPPED: "skipped",
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help=f"benchmarks to run (of {', '.join(BENCHMARKS)})")
    ap.add_argument("--quick", action="store_true", help="short settings (smoke run)")
    args = ap.parse_args(argv)
    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        ap.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    print(f"machine: {report.machine()}")
    results: dict[str, tuple[int, str, float, str]] = {}
    for name in names:
        module_name, full, quick = BENCHMARKS[name]
        bench_args = quick if args.quick else full
        print(f"\n=== bench.{module_name} {' '.join(bench_args)}", flush=True)
        t0 = time.monotonic()
        report.LAST.pop(module_name, None)
        try:
            module = importlib.import_module(f"bench.{module_name}")
            code = int(module.main(bench_args) or 0)
        except SystemExit as exc:  # argparse errors
            code = exc.code if isinstance(exc.code, int) else report.ERROR
        except Exception as exc:
            traceback.print_exc()
            code = report.failed(module_name, f"{type(exc).__name__}: {exc}")
        outcome = report.LAST.get(module_name)
        summary = outcome.summary if outcome is not None else f"exit status {code}"
        if code not in LABEL:
            code = report.ERROR
        label = LABEL[code]
        if outcome is not None and outcome.status == code and outcome.label:
            label = outcome.label
        results[name] = (code, label, time.monotonic() - t0, summary)
    print("\n=== summary" + (" (--quick: below the target sizes)" if args.quick else ""))
    print(f"  {'benchmark':19s} {'result':9s} {'time':>8s}  detail")
    for name, (_, label, secs, summary) in results.items():
        print(f"  {name:19s} {label:9s} {secs:7.1f}s  {summary}")
    counts = {label.lower(): 0 for label in LABEL.values()}
    for _, label, _, _ in results.values():
        counts[label.lower()] = counts.get(label.lower(), 0) + 1
    print("  " + ", ".join(f"{n} {label}" for label, n in counts.items()))
    bad = any(code in (report.MISSED, report.ERROR) for code, _, _, _ in results.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
