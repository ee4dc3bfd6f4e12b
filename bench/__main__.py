"""Run every benchmark in turn: ``python -m bench [--quick] [name ...]`` (``make bench``).

Each benchmark measures its own baseline in the same run and prints the ratio; this runner only
sequences them and reports which met their targets (exit status 1 if any did not). ``--quick``
passes each benchmark's shorter settings (fewer instances, seconds, vehicles) for a smoke run.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "telemetry": ([], ["--drones", "50", "--duration", "5"]),
    "vans": ([], ["--vans", "100", "--seconds", "10"]),
    "routing": ([], ["--instances", "C101,R101,RC101", "--seconds", "2"]),
    "dispatch": ([], ["--requests", "200"]),
}
"""Benchmark module → (full-run arguments, quick-run arguments)."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help=f"benchmarks to run (of {', '.join(BENCHMARKS)})")
    ap.add_argument("--quick", action="store_true", help="short settings (smoke run)")
    args = ap.parse_args(argv)
    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        ap.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    results: dict[str, tuple[int, float]] = {}
    for name in names:
        full, quick = BENCHMARKS[name]
        module = importlib.import_module(f"bench.{name}")
        print(f"\n=== bench.{name} {' '.join(quick if args.quick else full)}", flush=True)
        t0 = time.monotonic()
        code = module.main(quick if args.quick else full)
        results[name] = (int(code or 0), time.monotonic() - t0)
    print("\n=== summary")
    for name, (code, secs) in results.items():
        print(f"  {name:10s} {'met targets' if code == 0 else 'MISSED TARGETS':15s} {secs:7.1f} s")
    return 0 if all(code == 0 for code, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
