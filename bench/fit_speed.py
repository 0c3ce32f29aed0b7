"""Latency of the fit solver as a library call (issue 5 target: <= 0.3 s per answer).

Run: .venv/bin/python bench/fit_speed.py   (results recorded in bench/results/fit_speed.md)
"""

import statistics
import time

from estimators import Setup
from estimators.catalog import catalog
from estimators.fit import fit_report
from estimators.gpus import find_gpu

CASES = (
    ("llama-3.1-8b", "rtx4090", Setup(adaptation="full", micro_batch=8)),
    ("llama-3.1-8b", "rtx4090", Setup(adaptation="lora", micro_batch=8, seq_len=4096)),
    ("llama-3.1-70b", "a100-80gb", Setup(adaptation="full", micro_batch=4, grad_ckpt=False)),
    ("qwen2.5-7b", "t4", Setup(adaptation="lora", micro_batch=16, seq_len=8192)),
    ("mixtral-8x7b", "h100", Setup(adaptation="qlora", micro_batch=4)),
)


def main(repeats: int = 10) -> None:
    print("| model | gpu | set-up | median s | max s | fixes |\n|---|---|---|---|---|---|")
    for key, gpu, setup in CASES:
        spec, capacity = catalog()[key], find_gpu(gpu).memory_bytes
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            report = fit_report(spec, setup, capacity)
            times.append(time.perf_counter() - start)
        knobs = f"{setup.adaptation} mb={setup.micro_batch} seq={setup.seq_len}"
        print(f"| {key} | {gpu} | {knobs} | {statistics.median(times):.4f} | {max(times):.4f} | {len(report.fixes)} |")


if __name__ == "__main__":
    main()
