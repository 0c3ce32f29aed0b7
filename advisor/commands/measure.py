"""`advisor measure`: measure the GPU memory of one training set-up, to hold the estimator to it.

Needs the train extra (torch, transformers, peft, bitsandbytes); imported only inside `run`.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..knobs import add_knob_flags, setup_from_args

NAME = "measure"
EXAMPLES = """examples:
  advisor measure --model llama-3.1-8b --method lora --seq-len 2048
  advisor measure --model 70b --method qlora --write          # add the row to estimators/calibration/traces.jsonl
  advisor measure --model qwen2.5-0.5b --method full --mode real-cpu --seq-len 256
  advisor measure --model 7b --method qlora --mode cuda --json   # on a machine with a GPU
  advisor measure --model llama-3.2-1b --method lora --breakdown 20   # what is live at the peak, grouped

modes:
  trace     full size under FakeTensorMode on CPU: no weights, no memory, CUDA semantics (autocast op lists,
            flash-attention kernel and its backward workspaces, 512-byte allocator blocks). Counts what
            torch.cuda.max_memory_allocated would.
  real-cpu  the same step on real CPU tensors (small models only; checks the tracer)
  cuda      a real run on the GPU: reset_peak_memory_stats, steps, max_memory_allocated / reserved and
            device-level used memory, per phase
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="7b", help="catalog key, shorthand, cached hub id or config.json path (default: 7b)")
    p.add_argument("--mode", choices=("trace", "real-cpu", "cuda"), default="trace", help="how to measure (default: trace)")
    p.add_argument("--steps", type=int, default=2, help="optimizer steps to run (default: 2; cuda default 3)")
    p.add_argument("--write", action="store_true", help="store the row in estimators/calibration/traces.jsonl")
    p.add_argument("--out", help="JSONL file to store the row in instead of the bundled traces.jsonl")
    p.add_argument("--json", action="store_true", help="print the row as JSON")
    p.add_argument("--breakdown", type=int, default=0, metavar="N", help="trace modes: also list the N largest groups of tensors live at the peak")
    add_knob_flags(p)


def run(args: argparse.Namespace) -> int:
    from estimators import estimate
    from estimators.catalog import resolve_model

    from ..errors import AdvisorError, RunFailed

    try:
        import torch  # noqa: F401
    except ImportError:
        raise AdvisorError("advisor measure needs the train extra: pip install 'advisor[train]'") from None
    from estimators.effective import effective_setup
    from estimators.stacks import installed_mismatch

    from ..measure import record

    resolved = resolve_model(args.model)
    setup = setup_from_args(args)
    setup = setup.with_(grad_ckpt=setup.checkpointing)
    try:
        setup = effective_setup(resolved.spec, setup)  # the row records what peft runs (e.g. no dropout on fused
        # experts) and the LM head of --stack (estimators/stacks.py: hf-trainer's "fused" default is the HF loss)
        mismatch = installed_mismatch(setup)
        if mismatch:
            raise ValueError(mismatch)
        if args.mode == "cuda":
            from ..measure.cuda import measure_cuda

            row = measure_cuda(resolved.spec, setup, resolved.key, steps=max(args.steps, 3))
        else:
            from ..measure.trace import trace

            result = trace(resolved.spec, setup, real=args.mode == "real-cpu", steps=args.steps, describe=args.breakdown > 0)
            row = record.trace_row(resolved.key, setup.public_dict(), result)  # keyed as traces.jsonl rows are (method)
    except (ValueError, NotImplementedError) as e:
        raise RunFailed(f"cannot measure this set-up: {e}") from None
    if args.write or args.out:
        record.write_row(row, args.out or record.TRACES_PATH)
    est = estimate(resolved.spec, setup)
    if args.json:
        json.dump(row, sys.stdout, indent=2, sort_keys=True, allow_nan=False)
        print()
        return 0
    _print(row, est)
    if args.mode != "cuda" and args.breakdown:
        print(f"largest groups live at the peak ({args.breakdown}):")
        for nbytes, count, cat, what in result.breakdown[: args.breakdown]:
            print(f"  {nbytes / 2**20:10.1f} MiB  x{count:<4d} {cat:12s} {what}")
    return 0


def _print(row: dict, est) -> None:
    gib = 2**30
    measured = row["peak"]["allocated"]
    print(f"{row['model']}  {row['mode']}  attention: {row['attention']}")
    if row.get("quantization"):
        print(f"quantization: {row['quantization']}")
    print(
        f"peak allocated  {measured / gib:8.3f} GiB  in {row['peak_phase']}   (estimate {est.peak_allocated / gib:.3f} GiB,"
        f" {100 * (est.peak_allocated - measured) / measured:+.1f} %, peak in {est.peak_phase})"
    )
    for key in ("reserved", "device"):
        if key in row["peak"]:
            print(f"peak {key:10s} {row['peak'][key] / gib:8.3f} GiB")
    cats = est.categories()
    print(f"{'category':14s} {'measured':>10s} {'estimate':>10s}   (GiB, at each peak)")
    for name, nbytes in row["categories"].items():
        print(f"{name:14s} {nbytes / gib:10.3f} {cats.get(name, 0) / gib:10.3f}")
    phases = row.get("phase_peaks", {})
    if phases:
        print("phase peaks: " + ", ".join(f"{k} {v / gib:.3f}" for k, v in phases.items()))
    print(f"took {row.get('seconds', 0)} s")
