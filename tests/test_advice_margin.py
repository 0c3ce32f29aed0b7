"""Issue 13 item 2: a plan keeps a margin at least as large as the estimate's measured error for its class
(Estimate.band) plus, on a consumer card, a display reserve; `--margin` changes it; the output says what was kept.
The same rule in `advisor fit` and the wizard's memory screen."""

from __future__ import annotations

import json

import pytest

from advisor.advice.advise import advise
from advisor.answers import Answers
from estimators import Setup, estimate
from estimators.catalog import resolve_model
from estimators.dtypes import GIB
from estimators.errors import EstimateError
from estimators.gpus import find_gpu
from estimators.margin import DISPLAY_RESERVE, MIB, Margin, parse_margin

# The reproduction: "fits with 0.0 GiB to spare" on an 8 GB consumer card.
TIGHT = ["advise", "--goal", "best_quality", "--data", "instruction_pairs,preference_pairs", "--gpu", "rtx3060ti", "--model", "7b"]


def _stage_estimates(plan: dict):
    spec = resolve_model(plan["answers"]["model"]).spec
    return [estimate(spec, Setup.from_dict(s["setup"])) for s in plan["stages"]]


def test_the_tight_plan_keeps_the_band_error_and_the_display(advisor_main):
    out = advisor_main(*TIGHT, "--json")
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    gpu = find_gpu("rtx3060ti")
    assert gpu.consumer
    summary = plan["estimate"]
    assert summary["fits"]  # shortened if need be, but it fits: every stage leaves its class's error and the display free
    for est in _stage_estimates(plan):
        error = est.band.high_bytes - est.device_bytes
        assert est.device_bytes + error + DISPLAY_RESERVE <= gpu.memory_bytes
    assert summary["margin_gib"] * GIB >= DISPLAY_RESERVE
    assert "margin kept for estimate error" in summary["margin_note"] and "display" in summary["margin_note"]


def test_the_printed_verdict_says_what_margin_was_kept(advisor_main):
    out = advisor_main(*TIGHT)
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    assert "margin kept for estimate error" in text and "and the display" in text


def test_a_datacenter_card_keeps_no_display_reserve():
    plan = advise(Answers.from_mapping(dict(goal="chat_format", data=["instruction_pairs"], gpu="h100", model="7b")))
    assert "display" not in plan.estimate.margin_note and "estimate error" in plan.estimate.margin_note


def test_the_a100_80gb_rlhf_plan_no_longer_peaks_at_the_card():
    """The issue's wizard RLHF plan peaked at 78.7 of 79.2 GiB: every stage now leaves its band's error free."""
    plan = advise(Answers.from_mapping(dict(goal="best_quality", data=["instruction_pairs", "preference_pairs"], gpu="a100-80gb", model="7b")))
    capacity = find_gpu("a100-80gb").memory_bytes
    spec = resolve_model("7b").spec
    assert plan.estimate.fits and plan.estimate.headroom_gib >= 0
    for stage in plan.stages:
        est = estimate(spec, stage.setup)
        assert est.device_bytes + (est.band.high_bytes - est.device_bytes) <= capacity, stage.name
    assert plan.estimate.margin_gib > 0 and plan.estimate.device_gib + plan.estimate.margin_gib <= find_gpu("a100-80gb").memory_gib


@pytest.mark.parametrize(
    "text, size, share", [("2GiB", 2 * GIB, None), ("1.5", 1.5 * GIB, None), ("800MiB", 800 * MIB, None), ("10%", None, 0.10), ("0", 0, None)]
)
def test_margin_sizes_parse(text, size, share):
    m = parse_margin(text)
    assert m.user_bytes == size and m.user_fraction == share


@pytest.mark.parametrize("text", ["abc", "-1GiB", "100%", "2TB"])
def test_bad_margins_are_one_line_errors(advisor_main, text):
    with pytest.raises(EstimateError, match="--margin"):
        parse_margin(text)
    out = advisor_main(*TIGHT, "--margin", text)
    assert out.returncode == 2 and "--margin" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_a_user_margin_replaces_the_automatic_one():
    est = estimate(resolve_model("7b").spec, Setup(adaptation="qlora"))
    cap = find_gpu("rtx4090").memory_bytes
    auto = Margin(display=True).kept(est, cap)
    assert auto.display == DISPLAY_RESERVE and auto.error == est.band.high_bytes - est.device_bytes
    mine = parse_margin("3GiB", display=True).kept(est, cap)
    assert mine.total == 3 * GIB and mine.display == 0 and mine.error == 0
    assert parse_margin("10%").kept(est, cap).total == int(cap * 0.10)


def test_advise_margin_flag_is_kept_and_reported(advisor_main):
    base = ["advise", "--goal", "chat_format", "--data", "instruction_pairs", "--gpu", "rtx4090", "--model", "7b", "--json"]
    none = json.loads(advisor_main(*base, "--margin", "0").stdout)["estimate"]
    big = json.loads(advisor_main(*base, "--margin", "6GiB").stdout)["estimate"]
    assert none["margin_gib"] == 0 and big["margin_gib"] == 6.0
    assert "--margin 6GiB" in big["margin_note"] and big["margin_text"] == "6GiB"
    assert big["headroom_gib"] >= 0 and big["device_gib"] + 6.0 <= find_gpu("rtx4090").memory_gib


def test_fit_keeps_the_margin_too(advisor_main):
    args = ["fit", "--model", "8b", "--gpu", "rtx4090", "--method", "qlora", "--json"]
    auto = json.loads(advisor_main(*args).stdout)
    none = json.loads(advisor_main(*args, "--margin", "0").stdout)
    spec = resolve_model("8b").spec
    est = estimate(spec, Setup(adaptation="qlora"))
    assert auto["margin"]["display"]["bytes"] == DISPLAY_RESERVE
    assert auto["margin"]["estimate_error"]["bytes"] == est.band.high_bytes - est.device_bytes
    assert none["margin"]["kept"]["bytes"] == 0
    assert auto["max_micro_batch"] <= none["max_micro_batch"] and auto["max_seq_len"] < none["max_seq_len"]
    text = " ".join(advisor_main(*args[:-1]).stdout.split())
    assert "margin kept for estimate error" in text


def test_wizard_memory_view_judges_with_the_margin():
    from advisor.tui.plan_calls import make_plan, memory_view

    plan = make_plan(dict(goal="chat_format", data=["instruction_pairs"], gpu="rtx3090", model="7b"))
    view = memory_view(plan, plan.stages[0].name)
    est = estimate(resolve_model("7b").spec, plan.stages[0].setup)
    assert view.margin == (est.band.high_bytes - est.device_bytes) + DISPLAY_RESERVE
    assert view.fits == (view.device + view.margin <= view.capacity)
    assert view.headroom == view.capacity - view.device - view.margin
