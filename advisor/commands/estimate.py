"""`advisor estimate`: GPU memory of one fine-tuning run, term by term. Torch-free and fast: --json and output
that is not a terminal import no rich either (advisor/render.py)."""

from __future__ import annotations

import argparse
import json
import sys

from ..knobs import add_knob_flags, setup_from_args
from ..reward_value_flag import add_reward_value_flag, resolve_reward_value, reward_value_data
from ..timeflags import TIME_HELP, add_time_flags, time_block

NAME = "estimate"
EXAMPLES = (
    """examples:
  advisor estimate --model 7b --method qlora
  advisor estimate --model llama-3.1-8b --method full --precision bf16-mixed --gpu h100
  advisor estimate --model ./my-model/config.json --micro-batch 4 --seq-len 4096 --json
  advisor estimate --model qwen2.5-7b --method lora --lora-targets qv --no-grad-ckpt --gpu 24GB
  advisor estimate --model 8b --method qlora --stack hf-trainer --versions transformers=4.44,bitsandbytes=0.43
  advisor estimate --model 8b --llama-adapter --adapter-len 10 --adapter-layers 30 --stack hf-trainer   # LLaMA-Adapter (peft), priced only
  advisor estimate --model 8b --torch-compile --no-grad-ckpt   # what Inductor's partitioner saves per layer
  advisor estimate --model 70b --train ppo --reward-value-model 8b --gpus 8 --parallel fsdp
"""
    + TIME_HELP
    + "\n"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", default="7b", help="catalog key, shorthand (7b, 8b, 70b), hub id in the local cache, or a config.json path (default: 7b)"
    )
    p.add_argument("--gpu", help="a GPU id or name from `advisor gpus`, or a memory size like 24GB: says whether it fits and by how much")
    p.add_argument("--json", action="store_true", help="print the estimate as JSON (schema advisor.estimate/1)")
    add_reward_value_flag(p, "--train ppo / reward")
    add_knob_flags(p)
    add_time_flags(p)


def run(args: argparse.Namespace) -> int:
    from estimators import estimate
    from estimators.catalog import resolve_model
    from estimators.gpus import find_gpu
    from estimators.kind_models import trained_model
    from estimators.report import estimate_dict

    resolved = resolve_model(args.model)
    setup = setup_from_args(args)
    gpu = find_gpu(args.gpu) if args.gpu else None
    reward = resolve_reward_value(args.reward_value_model)
    est = estimate(resolved.spec, setup, reward.spec if reward else None)
    trained = trained_model(est.setup.train, resolved, reward)
    data = estimate_dict(est, trained.how, trained.key, gpu)
    if est.setup.train in ("ppo", "reward"):
        data["reward_value_model"] = reward_value_data(reward or resolved, given=reward is not None)
    from estimators.checks import gpu_warnings  # bf16 on a card without it (estimators/checks.py)

    card_warnings = gpu_warnings(est.setup, gpu)
    data["warnings"] = list(data["warnings"]) + card_warnings
    data["time"] = time_block(args, resolved.spec, est.setup, gpu, est.reward_model)  # None without a timed --gpu (advisor/timeflags.py)
    if args.json:
        json.dump(data, sys.stdout, indent=2, allow_nan=False)
        print()
    else:
        from ..render import estimate_blocks, print_blocks

        print_blocks(estimate_blocks(data))
        if data["time"]:
            from estimators.time_report import time_lines

            print_blocks(time_lines(data["time"]), highlight=False)
    for warning in list(est.warnings) + card_warnings:
        print(f"advisor: warning: {warning}", file=sys.stderr)
    return 0
