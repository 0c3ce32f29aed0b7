"""The time and cost flags of `advisor estimate` (issue 16), kept out of the command so it needs two lines for them.

Time needs a card with speed figures: it is shown when `--gpu` names one from `advisor gpus` (a bare memory size
like 24GB has no speed). Without `--gpu` the output has no time block; the data-set flags then say so.
"""

from __future__ import annotations

import argparse
import math

TIME_HELP = """time and cost (shown with --gpu; a GPU given only as a memory size has no speed figures):
  advisor estimate --model 8b --method qlora --gpu rtx4090 --examples 20000 --mean-tokens 350 --epochs 3
  advisor estimate --model 7b --method lora --gpu a100-80gb --tokens 50000000 --price 1.20
  advisor estimate --model 70b --method qlora --gpu h100 --gpus 8 --parallel fsdp --tokens 2e8 --json"""


def _count(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number like 20000 or 2e7, got '{text}'") from None
    if not math.isfinite(value) or value > 1e18:  # inf, 1e309: int() would raise OverflowError
        raise argparse.ArgumentTypeError(f"expected a finite number up to 1e18, got '{text[:40]}'")
    if value != int(value):
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'")
    return int(value)


def add_time_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("time and cost (with --gpu)")
    g.add_argument("--examples", type=_count, help="training examples in the data set (preference pairs for dpo/reward, prompts for ppo/grpo)")
    g.add_argument("--mean-tokens", type=float, help="mean tokens per example (default: --seq-len, i.e. full packed sequences)")
    g.add_argument("--tokens", type=_count, help="training tokens in the data set, instead of --examples")
    g.add_argument("--epochs", type=float, default=1.0, help="passes over the data set (default: 1)")
    g.add_argument(
        "--price", type=float, metavar="USD_PER_GPU_HOUR", help="price per GPU-hour, overriding the on-demand list price in rules/gpus.toml"
    )


def wants_time(args: argparse.Namespace) -> bool:
    return any(getattr(args, k, None) is not None for k in ("examples", "tokens", "mean_tokens", "price"))


def time_block(args: argparse.Namespace, spec, setup, gpu, reward_model=None) -> dict | None:
    """The `time` block for the estimate's JSON, or None when there is no card to time. Raises EstimateError
    (one line, exit 2) for data-set flags without a timed --gpu, and for bad values. `reward_model`: the reward/value
    architecture when it is not the policy's (--reward-value-model)."""
    from estimators.errors import EstimateError

    if gpu is None or not gpu.timed:
        if wants_time(args):
            what = "--gpu with a card from `advisor gpus`" if gpu is None else f"a named card, not '{gpu.id}'"
            raise EstimateError(f"time and cost need {what} (its speed and price come from rules/gpus.toml)")
        return None
    from estimators.time_report import Dataset, time_dict  # after the return: an untimed estimate skips the time model

    dataset = Dataset(examples=args.examples, mean_tokens=args.mean_tokens, tokens=args.tokens, epochs=args.epochs)
    return time_dict(spec, setup, gpu, dataset, args.price, reward_model=reward_model)
