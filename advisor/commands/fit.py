"""`advisor fit`: the largest micro-batch and sequence that fit a GPU, and the cheapest changes that make a
run fit when it does not. Torch-free, like `estimate`."""

from __future__ import annotations

import argparse
import json
import sys

from ..knobs import add_knob_flags, setup_from_args
from ..reward_value_flag import add_reward_value_flag, resolve_reward_value, reward_value_data

NAME = "fit"
EXAMPLES = """examples:
  advisor fit --model 8b --gpu rtx4090
  advisor fit --model 8b --gpu rtx4090 --method full --micro-batch 8
  advisor fit --model 70b --gpu a100-80gb --method qlora --seq-len 8192 --json
  advisor fit --model 8b --gpu rtx4090 --method lora --margin 1GiB
  advisor fit --model 8b --gpu h100 --train ppo --method lora --reward-value-model llama-3.2-1b
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="7b", help="catalog key, shorthand, local config.json or cached hub id (default: 7b)")
    p.add_argument("--gpu", required=True, help="a GPU id or name from `advisor gpus`, or a memory size like 24GB")
    p.add_argument("--json", action="store_true", help="print the report as JSON (schema advisor.fit/1)")
    p.add_argument(
        "--margin",
        metavar="SIZE",
        default=None,
        help="memory to keep free besides the estimate: 1.5GiB, 800MiB, 10%% (of the card) or 0; default auto = "
        "the estimate's measured error for its class, plus 0.5 GiB on a consumer card for the display",
    )
    p.add_argument(
        "--goal",
        choices=("simplest", "fastest"),
        default="simplest",
        help="rank the set-ups that fit by simplicity (default) or by predicted time on --gpu (fastest first)",
    )
    add_reward_value_flag(p, "--train ppo / reward")
    add_knob_flags(p)


def fit_dict(report, gpu, resolved, reward=None) -> dict:
    """The report as JSON data. `resolved`: the policy (catalog Resolved); `reward`: the --reward-value-model one, or
    None (the policy's architecture prices the reward and value models)."""
    from estimators.checks import gpu_warnings
    from estimators.kind_models import trained_model
    from estimators.margin import Margin, paged_placement
    from estimators.report import estimate_dict, size
    from estimators.setup import public_names
    from estimators.time_plan import change_time

    est, capacity = report.estimate, report.capacity
    margin = report.margin or Margin(display=gpu.consumer)
    kept = margin.kept(est, capacity)
    paged = paged_placement(est, capacity, margin, gpu.pcie_gbs)
    trained = trained_model(est.setup.train, resolved, reward)
    estimate = estimate_dict(est, trained.how, trained.key, gpu)
    # every warning once: the estimate's own, then the card's (the fixes' estimates repeat the same ones)
    warnings = list(dict.fromkeys(list(estimate["warnings"]) + gpu_warnings(est.setup, gpu)))
    data = {
        "schema": "advisor.fit/1",
        "gpu": {"id": gpu.id, "name": gpu.name, "memory_gib": gpu.memory_gib, "consumer": gpu.consumer},
        "estimate": estimate,
        "margin": {
            "kept": size(kept.total),
            "estimate_error": size(kept.error),
            "display": size(kept.display),
            "asked": margin.text,
            "spare": size(margin.spare(est, capacity)),
            "verdict": margin.verdict(est, capacity),
        },
        "paged_optimizer_states": None
        if paged is None
        else {
            "total": size(paged.total),
            "on_card": size(paged.on_card),
            "spilled": size(paged.spilled),
            "where": "CUDA unified memory (bitsandbytes paged optimizer), outside the on-card figure",
            "seconds_per_step": None if paged.seconds_per_step is None else round(paged.seconds_per_step, 3),
            "note": paged.describe(),
        },
        "warnings": warnings,
        "fits": report.fits,
        "max_micro_batch": report.max_micro_batch,
        "max_seq_len": report.max_seq_len,
        "model_positions": resolved.spec.max_positions,  # the ceiling of max_seq_len (estimators/fit.py max_seq_len)
        "fixes": [
            {
                "change": fix.label,
                "cost": fix.cost,
                "set": public_names(fix.changes),
                "fits": fix.fits,
                "device": size(fix.device_bytes),
                "peak_allocated": size(fix.estimate.peak_allocated),
                "time": change_time(resolved.spec, est.setup, fix.setup, gpu, est.reward_model),
            }  # estimators/time_plan.py; None: not timed
            for fix in report.fixes
        ],
    }
    if est.setup.train in ("ppo", "reward"):
        data["reward_value_model"] = reward_value_data(reward or resolved, given=reward is not None)
    return data


def run(args: argparse.Namespace) -> int:
    from estimators.catalog import resolve_model
    from estimators.fit import fit_report
    from estimators.gpus import find_gpu
    from estimators.margin import parse_margin

    resolved = resolve_model(args.model)
    reward = resolve_reward_value(args.reward_value_model)
    rm = reward.spec if reward else None  # estimate() refuses another vocabulary or a kind without one (exit 2)
    gpu = find_gpu(args.gpu)
    margin = parse_margin(args.margin, display=gpu.consumer)
    report = fit_report(resolved.spec, setup_from_args(args), gpu.memory_bytes, margin, reward_model=rm)
    if args.goal == "fastest":  # the fitting set-ups ranked by predicted time (estimators/time_plan.py)
        from dataclasses import replace

        from estimators.time_plan import fastest_fixes

        report = replace(report, fixes=fastest_fixes(resolved.spec, report.estimate.setup, gpu, margin, reward_model=rm))
    data = fit_dict(report, gpu, resolved, reward)
    data["goal"] = args.goal
    if args.json:
        json.dump(data, sys.stdout, indent=2, allow_nan=False)
        print()
    else:
        print_fit(data)
    for warning in data["warnings"]:
        print(f"advisor: warning: {warning}", file=sys.stderr)
    return 0


def print_fit(data: dict) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ..render import setup_line

    console = Console()
    est = data["estimate"]
    console.print(f"[bold]{est['model']['name']}[/bold] on {data['gpu']['name']}\n[dim]{setup_line(est['setup'])}[/dim]")
    rv = data.get("reward_value_model")
    if rv and rv["separate"]:
        console.print(f"[dim]reward and value models priced at {escape(rv['name'])}[/dim]")
    colour = "green" if data["fits"] else "red"
    console.print(
        f"[{colour}]{escape(data['margin']['verdict'])}[/{colour}] (peak {est['peak']['device']['gib']:.1f} GiB on the card, "
        f"{data['gpu']['memory_gib']:g} GiB card)"
    )
    if data["paged_optimizer_states"]:
        console.print(f"[yellow]{escape(data['paged_optimizer_states']['note'])}[/yellow]")
    seq = est["setup"]["seq_len"]
    if data["max_micro_batch"]:
        console.print(f"largest micro-batch at {seq} tokens: [bold]{data['max_micro_batch']}[/bold]")
    if data["max_seq_len"]:
        from estimators.fit import SEQ_STEP  # the search's step: within one of the positions means it stopped there

        positions = data["model_positions"]
        cap = f" (the model's {positions:,} positions: no longer sequence can be read)" if data["max_seq_len"] + SEQ_STEP > positions else ""
        console.print(f"longest sequence at micro-batch {est['setup']['micro_batch']}: [bold]{data['max_seq_len']}[/bold] tokens{cap}")
    if data["fits"] and data.get("goal") != "fastest":
        return
    if not data["fixes"]:
        console.print(
            "[red]no combination of the changes the advisor knows makes this fit[/red]: choose a smaller model or a larger GPU (`advisor gpus`)"
        )
        return
    table = Table(
        "#",
        "change",
        "on the card GiB",
        "cost",
        title="fastest set-ups that fit (predicted time)" if data.get("goal") == "fastest" else "cheapest changes that make it fit",
        title_justify="left",
    )
    for i, fix in enumerate(data["fixes"], 1):
        time = f"; {fix['time']['text']}" if fix.get("time") else ""
        table.add_row(str(i), fix["change"], f"{fix['device']['gib']:.1f}", fix["cost"] + time)
    console.print(table)
