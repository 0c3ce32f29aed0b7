"""Whole-process speed of `advisor estimate`: median wall time and max RSS over N fresh processes.

Targets (issue 3): median <= 0.15 s, max RSS <= 45 MiB on the 2-core development machine.
Run: .venv/bin/python bench/speed.py [N]   (results recorded in bench/results/speed.md)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

COMMANDS = (
    ["estimate", "--model", "7b", "--method", "qlora"],
    ["estimate", "--model", "llama-3.1-70b", "--method", "full", "--gpu", "h100", "--json"],
)


def run_once(args: list[str]) -> tuple[float, float]:
    """Wall seconds and max RSS (MiB) of one fresh `advisor` process."""
    start = time.perf_counter()
    pid = os.posix_spawn(sys.executable, [sys.executable, "-m", "advisor", *args], os.environ.copy(), file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)])
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"advisor {' '.join(args)} failed")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    print(f"| command | runs | median s | p90 s | max RSS MiB |\n|---|---|---|---|---|")
    for args in COMMANDS:
        run_once(args)  # warm the page cache and bytecode
        samples = [run_once(args) for _ in range(n)]
        times = sorted(s[0] for s in samples)
        rss = max(s[1] for s in samples)
        print(f"| advisor {' '.join(args)} | {n} | {statistics.median(times):.3f} | {times[int(0.9 * (n - 1))]:.3f} | {rss:.1f} |")


if __name__ == "__main__":
    main()
