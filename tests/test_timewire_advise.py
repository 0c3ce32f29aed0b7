"""`advisor advise` priced in time and money (issue 16): every stage in hours and dollars on the user's GPUs, and
RLHF vs DPO weighed against the user's time and money with the predicted numbers instead of fixed thresholds."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from advisor.advice.advise import advise
from advisor.answers import Answers
from advisor.plan import load_plan, save_plan
from advisor.plan_render import print_plan
from advisor.planning import model_spec
from estimators.gpus import find_gpu
from estimators.time_plan import Stage, plan_time
from estimators.time_report import Dataset

BASE = dict(goal="quality_safety", data="preference_pairs", gpu="h100", model="7b")


def plan_for(**answers):
    return advise(Answers.from_mapping(answers))


@pytest.fixture(scope="module")
def rlhf():
    plan = plan_for(**BASE)
    assert plan.pipeline == "rlhf"  # ample: one H100 is not a personal GPU and no budget was given
    return plan


def test_every_stage_is_priced_for_the_assumed_data_size(rlhf):
    t = rlhf.time
    assert [s.name for s in t.stages] == ["sft", "reward", "ppo"]
    spec = model_spec("7b")[0]
    stages = [Stage(s.name, spec, s.setup, Dataset(examples=10_000, mean_tokens=2048.0, epochs=s.hyper.epochs)) for s in rlhf.stages]
    want = plan_time(stages, find_gpu("h100"))  # the time model itself, from the plan's own stage set-ups
    assert [s.hours for s in t.stages] == [s["hours"] for s in want["stages"]]
    assert t.usd == want["total"]["usd"] and t.hours == want["total"]["hours"]
    assert t.examples == 10_000 and t.examples_assumed and "assuming 10,000 examples" in t.assumption
    assert t.line.startswith("3 stages, ~") and "on 1x NVIDIA H100 80GB" in t.line


def test_the_users_data_size_is_what_is_priced(rlhf):
    half = plan_for(**BASE, data_count=5000)
    assert half.time.examples == 5000 and not half.time.examples_assumed
    assert "5,000 examples" in half.time.assumption
    for a, b in zip(half.time.stages, rlhf.time.stages, strict=False):
        assert a.hours == pytest.approx(b.hours / 2, rel=0.01)  # same set-ups, half the tokens


@pytest.mark.parametrize("factor, pipeline", [(1.1, "rlhf"), (0.9, "dpo")])
def test_time_budget_is_weighed_against_rlhfs_predicted_hours(rlhf, factor, pipeline):
    budget = round(rlhf.time.hours * factor, 1)  # about 51 h or 62 h: both over the old fixed 24 h threshold
    plan = plan_for(**BASE, time_budget_hours=budget)
    assert plan.pipeline == pipeline
    text = " ".join(r.en for r in plan.reasons)
    assert f"RLHF: 3 stages, ~{rlhf.time.hours:.1f} h, ~${rlhf.time.usd:,.0f} on 1x NVIDIA H100 80GB; DPO: ~" in text
    if pipeline == "dpo":
        assert f"RLHF is over your time budget of {budget:g} h" in text
    else:
        assert f"within your budget of {budget:g} h" in text


@pytest.mark.parametrize("factor, pipeline", [(1.2, "rlhf"), (0.8, "dpo")])
def test_money_budget_is_weighed_against_rlhfs_predicted_cost(rlhf, factor, pipeline):
    budget = round(rlhf.time.usd * factor)  # both under the old fixed $1000 threshold
    plan = plan_for(**BASE, budget_usd=budget)
    assert plan.pipeline == pipeline
    if pipeline == "dpo":
        assert f"RLHF is over your budget of ${budget:,}" in " ".join(r.en for r in plan.reasons)


def test_korean_reason_quotes_the_numbers_too(rlhf):
    plan = plan_for(**BASE, time_budget_hours=5)
    ko = " ".join(r.ko for r in plan.reasons)
    assert f"RLHF: 3단계, 약 {rlhf.time.hours:.1f}시간" in ko and "시간 예산 5시간을 넘음" in ko
    assert "stages" not in ko and " h," not in ko  # the quote is in Korean, not the English line (it was, until session 8)
    en = " ".join(r.en for r in plan.reasons)
    assert f"RLHF: 3 stages, ~{rlhf.time.hours:.1f} h" in en


def test_plan_over_the_budget_whatever_the_method_warns():
    plan = plan_for(**BASE, time_budget_hours=0.5)  # even DPO takes longer than half an hour for 10,000 pairs
    assert plan.pipeline == "dpo" and plan.time.hours > 0.5
    assert any(w.en.startswith(f"the plan is predicted to take ~{plan.time.hours:.1f} h") and "0.5 h" in w.en for w in plan.warnings)


def test_card_without_speed_figures_keeps_the_fallback_threshold():
    plan = plan_for(**{**BASE, "gpu": "80GB"}, time_budget_hours=6)
    assert plan.time is None
    assert plan.pipeline == "dpo"
    assert any("no time prediction for" in r.en and "24 h" in r.en for r in plan.reasons)


def test_time_is_printed_saved_and_in_json(advisor_main, rlhf, tmp_path):
    buf = io.StringIO()
    print_plan(rlhf, Answers.from_mapping(BASE), console=Console(file=buf, width=120))
    out = buf.getvalue()
    assert "Expected time and cost" in out and f"{rlhf.time.stages[2].hours:.1f} h" in out and "$2.99/GPU-hour" in out
    path = save_plan(rlhf, tmp_path / "plan.toml")
    assert load_plan(path).time == rlhf.time
    done = advisor_main("advise", "--goal", "quality_safety", "--data", "preference_pairs", "--gpu", "h100", "--model", "7b", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["time"]["hours"] == rlhf.time.hours and data["time"]["stages"][0]["name"] == "sft"


def test_adaptations_are_weighed_against_the_budget_with_their_times():
    domain = dict(goal="domain", data="instruction_pairs", gpu="a100-80gb", model="7b", priority="quality")
    free = plan_for(**domain)
    full = [a for a in free.alternatives if a.method == "full"]
    assert free.adaptation == "lora" and full and " h, ~$" in full[0].why_not_en and "for LoRA" in full[0].why_not_en
    lora_h = free.time.hours
    faster = float(full[0].why_not_en.split("micro-batch 1, ~", 1)[1].split(" h", 1)[0])
    assert faster < lora_h  # full fine-tuning without checkpointing is predicted faster than LoRA with it
    budget = round((faster + lora_h) / 2, 1)
    tight = plan_for(**domain, time_budget_hours=budget)
    assert tight.adaptation == "lora"  # the order the priority promised is kept ...
    assert any(
        w.en.startswith("LoRA is predicted at ~") and f"over your budget of {budget:g} h" in w.en and "full fine-tuning fits too" in w.en
        for w in tight.warnings
    )  # ... and the faster one is named
