"""Time for the advice commands (estimators/time_plan.py): what a change costs in time, the fastest set-ups that
fit, hours and dollars per stage."""

from __future__ import annotations

import json

import pytest

from advisor.cli import main
from estimators import time_plan as tp
from estimators.catalog import resolve_model
from estimators.gpus import gpus
from estimators.setup import Setup
from estimators.time_report import Dataset

M8 = resolve_model("llama-3.1-8b").spec
A100, RTX3060 = gpus()["a100-80gb"], gpus()["rtx3060"]


def test_checkpointing_costs_time_and_says_why():
    base = Setup(adaptation="lora", micro_batch=4, grad_ckpt=False)
    t = tp.change_time(M8, base, base.with_(grad_ckpt=True), A100)
    assert 1.2 < t["time_ratio"] < 1.5  # one more forward of the layers: ~1/3 of forward + backward
    assert "recomputes the forward" in t["text"] and t["text"].startswith("+")


def test_offload_and_qlora_reasons():
    base = Setup(adaptation="full", micro_batch=1, gpus=2, parallel="zero2")
    off = tp.change_time(M8, base, base.with_(offload_optimizer=True), A100)
    assert off["time_ratio"] > 1.05 and "PCIe" in off["text"]
    q = tp.change_time(M8, Setup(adaptation="lora"), Setup(adaptation="qlora"), A100)
    assert q["time_ratio"] > 1.0 and "dequantised" in q["text"]


def test_untimed_card_gives_none():
    from estimators.gpus import find_gpu

    assert tp.change_time(M8, Setup(), Setup(adaptation="qlora"), find_gpu("24GB")) is None


def test_fastest_fixes_are_sorted_by_time_per_token():
    fixes = tp.fastest_fixes(M8, Setup(adaptation="lora", micro_batch=4), gpus()["rtx4090"])
    assert fixes
    per_token = [tp.seconds_per_token(tp.time_or_none(M8, f.setup, gpus()["rtx4090"])) for f in fixes]
    assert per_token == sorted(per_token)
    assert len({f.setup for f in fixes}) == len(fixes)


def test_plan_time_adds_up_stages_and_prices_them():
    stages = [
        tp.Stage("SFT", M8, Setup(adaptation="lora", micro_batch=4), Dataset(examples=10000, mean_tokens=500)),
        tp.Stage("DPO", M8, Setup(train="dpo", adaptation="lora"), Dataset(examples=5000, mean_tokens=400)),
    ]
    plan = tp.plan_time(stages, A100)
    hours = [s["hours"] for s in plan["stages"]]
    assert plan["total"]["hours"] == pytest.approx(sum(hours), abs=2e-3)
    assert plan["total"]["usd"] == pytest.approx(sum(s["usd"] for s in plan["stages"]), abs=0.02)
    assert plan["total"]["hours_low"] < plan["total"]["hours"] < plan["total"]["hours_high"]
    assert tp.plan_line(plan, A100).startswith("2 stages, ~") and "on 1x NVIDIA A100 80GB" in tp.plan_line(plan, A100)
    unpriced = tp.plan_time(stages, RTX3060)
    assert unpriced["total"]["usd"] is None and "~$" not in tp.plan_line(unpriced, RTX3060)
    assert tp.plan_time(stages, RTX3060, price=0.2)["total"]["usd"] > 0


def test_readme_lines_are_a_markdown_table():
    lines = tp.readme_lines([tp.Stage("SFT", M8, Setup(adaptation="qlora"), Dataset(tokens=10**7))], A100)
    assert lines[0].startswith("| stage |") and lines[2].startswith("| SFT | 1 |") and "per GPU-hour" in lines[-1]


def test_fit_goal_fastest_cli(capsys):
    assert main(["fit", "--model", "8b", "--method", "lora", "--micro-batch", "4", "--gpu", "rtx4090", "--goal", "fastest", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["goal"] == "fastest" and data["fixes"]
    ratios = [f["time"]["time_ratio"] for f in data["fixes"]]
    assert ratios == sorted(ratios)
    assert main(["fit", "--model", "8b", "--method", "lora", "--micro-batch", "4", "--gpu", "rtx4090"]) == 0
    assert "% time" in capsys.readouterr().out  # simplest ranking also shows each change's time cost
