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
    # issue 16: the same estimate with the time and cost block
    ["estimate", "--model", "llama-3.1-70b", "--method", "full", "--gpu", "h100", "--tokens", "1e8", "--json"],
)
# In-process cost of the time terms alone (issue 16 target: a few milliseconds): step_time + time_dict per set-up.
TIME_CASES = (
    ("llama-3.1-8b", {"method": "qlora"}, "rtx4090"),
    ("llama-3.1-70b", {"method": "full", "gpus": 8, "parallel": "fsdp"}, "h100"),
    ("mixtral-8x7b", {"method": "lora"}, "a100-80gb"),
    ("qwen2.5-7b", {"train": "grpo", "method": "lora", "seq_len": 1024, "response_len": 512}, "h100"),
    ("llama-3.1-8b", {"train": "dpo", "method": "full", "gpus": 4, "parallel": "zero3"}, "h100"),
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


def time_terms_cost(repeats: int = 200) -> None:
    """Median milliseconds of the time terms (estimators.timing.step_time + time_report.time_dict), in process."""
    from estimators.catalog import resolve_model
    from estimators.gpus import find_gpu
    from estimators.setup import Setup
    from estimators.time_report import Dataset, time_dict

    print("\n| time terms: model, set-up, GPU | calls | median ms | max ms |\n|---|---|---|---|")
    for key, changes, gpu_id in TIME_CASES:
        spec, gpu, setup = resolve_model(key).spec, find_gpu(gpu_id), Setup(**changes)
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            time_dict(spec, setup, gpu, Dataset(tokens=10**8))
            samples.append((time.perf_counter() - start) * 1e3)
        samples.sort()
        print(f"| {key} {changes} {gpu_id} | {repeats} | {statistics.median(samples):.2f} | {samples[-1]:.2f} |")


if __name__ == "__main__":
    main()
    time_terms_cost()
