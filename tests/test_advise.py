"""`advise(answers) -> Plan` and `advisor advise`: the source document's §6 rows as scenarios, the RLHF-vs-DPO
criteria, hardware limits, the fit invariant, the questions' declarations and the command line."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor import rules
from advisor.advice.advise import advise
from advisor.advice.fitting import EFFECTIVE_BATCH, MIN_SEQ
from advisor.advice.rows import comparison_close
from advisor.advice.summary import RULE_OF_THUMB_GAP
from advisor.answers import Answers, load_answers
from advisor.errors import AdvisorError
from advisor.plan import Plan, load_plan
from advisor.planning import PIPELINES, build_plan, model_spec, stage_models
from advisor.questions import QUESTIONS, questions
from estimators import Setup, estimate
from estimators.gpus import find_gpu
from estimators.margin import Margin

GIB = 2**30


def plan_for(**answers) -> Plan:
    return advise(Answers.from_mapping(answers))


def rule_ids(plan: Plan) -> list[str]:
    return [r.rule for r in plan.reasons]


def assert_every_stage_fits(plan: Plan) -> None:
    spec, _ = model_spec(plan.answers["model"])
    gpu = find_gpu(plan.answers["gpu"])
    margin = Margin(display=gpu.consumer)  # the plan's rule: the estimate's band, plus the display on a consumer card
    for stage in plan.stages:
        reward = stage_models(plan, stage)[1]  # RLHF's smaller reward/value model, when the plan has one (issue 16)
        assert margin.fits(estimate(spec, stage.setup, reward), gpu.memory_bytes), stage.name
    assert plan.estimate.fits and plan.estimate.headroom_gib >= 0


# ------------------------------------------------------------------------------------------------ §6 rows
def test_sel_chat_format_is_sft():
    plan = plan_for(goal="chat_format", data="instruction_pairs", gpu="h100", model="7b")
    assert (plan.pipeline, plan.adaptation) == ("sft", "full")  # quality priority, and full fits on 80 GB
    assert "sel.chat_format" in rule_ids(plan)
    assert [s.name for s in plan.stages] == ["sft"]
    assert {a.method for a in plan.alternatives} >= {"dpo", "rlhf", "lora", "qlora"}
    assert_every_stage_fits(plan)


def test_sel_quality_safety_is_rlhf_or_dpo():
    plan = plan_for(goal="quality_safety", data="preference_pairs", gpu="a100-80gb", model="7b")
    assert plan.pipeline == "rlhf"  # the row allows either: quality is the default priority and an A100 80GB is ample
    assert "sel.quality_safety" in rule_ids(plan)


def test_sel_best_quality_resources_is_three_stage_rlhf():
    # PPO holds policy, reference, reward and a fully trained value model: with the margin kept for the estimate's
    # measured error (estimators/margin.py), a full 7B RLHF needs two H200s (FSDP; two H100s no longer leave it);
    # on one card the same plan is LoRA RLHF.
    plan = plan_for(goal="best_quality", data="instruction_pairs,preference_pairs", gpu="h200", gpu_count=2, model="7b")
    assert plan.pipeline == "rlhf" and plan.adaptation == "full"
    assert {s.setup.parallel for s in plan.stages} == {"fsdp"}
    one_card = plan_for(goal="best_quality", data="instruction_pairs,preference_pairs", gpu="h100", model="7b")
    assert one_card.pipeline == "rlhf" and one_card.adaptation == "lora"
    assert_every_stage_fits(one_card)
    assert "sel.best_quality_resources" in rule_ids(plan) and "rlhf" in rule_ids(plan)
    assert "cmp.choose_when" not in rule_ids(plan)  # ample + best quality: not a close call
    assert any(a.method == "dpo" and a.rule.startswith("cmp.") for a in plan.alternatives)
    assert_every_stage_fits(plan)


def test_sel_limited_simple_is_dpo():
    plan = plan_for(goal="simple", data="preference_pairs", gpu="a100-80gb", model="7b")
    assert plan.pipeline == "dpo"
    assert "sel.limited_simple" in rule_ids(plan)
    assert [s.name for s in plan.stages] == ["dpo"] and plan.stages[0].data_format == "preference"
    assert_every_stage_fits(plan)


def test_sel_personal_gpu_is_qlora_sft():
    # cost first: the personal-GPU row's QLoRA (with quality first, full > LoRA > QLoRA: tests/test_advice_priority.py)
    plan = plan_for(goal="chat_format", data="instruction_pairs", gpu="rtx4090", model="7b", priority="cost")
    assert (plan.pipeline, plan.adaptation) == ("sft", "qlora")
    assert {"sel.personal_gpu", "sel.chat_format"} <= set(rule_ids(plan))
    assert any(a.method == "lora" for a in plan.alternatives)  # LoRA fits a 24 GB card too: said why not
    assert_every_stage_fits(plan)


def test_sel_domain_is_lora_sft():
    plan = plan_for(goal="domain", data="instruction_pairs", gpu="a100-80gb", model="8b")
    assert (plan.pipeline, plan.adaptation) == ("sft", "lora")
    assert "sel.domain" in rule_ids(plan)
    full = [a for a in plan.alternatives if a.method == "full"]
    assert full and "fits too" in full[0].why_not_en  # full would fit, but the row says LoRA/QLoRA
    assert_every_stage_fits(plan)


def test_sel_domain_on_a_personal_gpu_is_qlora_and_raw_text_trains_as_text():
    plan = plan_for(goal="domain", data="raw_text", gpu="rtx4090", model="7b", priority="cost")
    assert (plan.pipeline, plan.adaptation) == ("sft", "qlora")
    assert {"sel.domain", "sel.personal_gpu"} <= set(rule_ids(plan))
    assert plan.stages[0].data_format == "text"


def test_every_situation_row_is_reachable():
    cited = set()
    for answers in (
        dict(goal="chat_format", data="instruction_pairs", gpu="h100"),
        dict(goal="quality_safety", data="preference_pairs", gpu="h100"),
        dict(goal="best_quality", data="preference_pairs", gpu="h100"),
        dict(goal="simple", data="preference_pairs", gpu="h100"),
        dict(goal="chat_format", data="instruction_pairs", gpu="rtx4090"),
        dict(goal="domain", data="instruction_pairs", gpu="h100"),
    ):
        cited |= set(rule_ids(plan_for(**answers)))
    assert {row["id"] for row in rules.selection_rows()} <= cited


# ------------------------------------------------------------------------------------------------ RLHF vs DPO
def test_quality_priority_with_ample_resources_picks_rlhf():
    plan = plan_for(goal="quality_safety", data="instruction_pairs,preference_pairs", gpu="h100", model="7b", priority="quality")
    assert plan.pipeline == "rlhf"
    assert {"sel.quality_safety", "sel.best_quality_resources"} <= set(rule_ids(plan))


def test_cost_priority_with_ample_resources_is_a_close_call_for_dpo():
    plan = plan_for(goal="quality_safety", data="instruction_pairs,preference_pairs", gpu="h100", model="7b", priority="cost")
    assert plan.pipeline == "sft+dpo"  # instruction pairs train an SFT stage that DPO starts from
    assert comparison_close(plan)
    assert "sel.limited_simple" in rule_ids(plan)
    rlhf = [a for a in plan.alternatives if a.method == "rlhf"]
    assert rlhf and rlhf[0].rule.startswith("cmp.")
    assert plan.stage("dpo").base_from == "sft"


def test_personal_gpu_limits_resources_so_dpo():
    plan = plan_for(goal="quality_safety", data="preference_pairs", gpu="rtx4090", model="7b", priority="quality")
    assert plan.pipeline == "dpo" and plan.adaptation == "lora"  # quality: full > LoRA > QLoRA, and LoRA DPO fits 24 GB
    assert comparison_close(plan)  # quality wanted, resources limited
    assert "personal GPU" in " ".join(r.en for r in plan.reasons)


# The budgets are weighed against RLHF's predicted hours and dollars (issue 16), no longer a fixed $1000: 7B LoRA
# RLHF on one H100 for the assumed 10,000 examples is predicted at about $170, so $100 is short and $200 is not.
@pytest.mark.parametrize("budget", [{"time_budget_hours": 6}, {"budget_usd": 100}])
def test_small_time_or_money_budget_picks_dpo(budget):
    plan = plan_for(goal="quality_safety", data="preference_pairs", gpu="h100", model="7b", **budget)
    assert plan.pipeline == "dpo"
    text = " ".join(r.en for r in plan.reasons)
    assert "time budget" in text or "budget of $" in text


def test_rlhf_needs_its_stages_to_fit_with_full_or_lora():
    # 70B: RLHF's stages do not fit one H100 with full fine-tuning or LoRA, so resources are not ample.
    plan = plan_for(goal="best_quality", data="preference_pairs", gpu="h100", model="70b")
    assert plan.pipeline == "dpo"
    assert any("best quality" in w.en for w in plan.warnings)


def test_preference_data_missing_falls_back_to_sft_with_a_warning():
    plan = plan_for(goal="quality_safety", data="instruction_pairs", gpu="h100", model="7b")
    assert plan.pipeline == "sft"
    assert any("preference data missing" in w.en for w in plan.warnings)
    assert {a.method for a in plan.alternatives} >= {"rlhf", "dpo"}


def test_reward_signal_without_preference_pairs_is_grpo_marked_as_addition():
    plan = plan_for(goal="reasoning", data="reward_signal", gpu="h100", model="8b")
    assert plan.pipeline == "grpo"
    grpo = [r for r in plan.reasons if r.rule == "grpo"]
    assert grpo and "addition" in grpo[0].en
    assert rules.methods()["grpo"]["addition"] is True
    assert any("not in the source document" in w.en for w in plan.warnings)


# ------------------------------------------------------------------------------------------------ hardware
def test_7b_on_an_8gb_card_is_qlora_sft_that_fits():
    plan = plan_for(goal="chat_format", data="instruction_pairs", gpu="rtx3060ti", model="7b")
    assert (plan.pipeline, plan.adaptation) == ("sft", "qlora")
    assert_every_stage_fits(plan)
    setup = plan.stages[0].setup
    assert setup.micro_batch * setup.grad_accum == EFFECTIVE_BATCH
    why_not = {a.method: a for a in plan.alternatives}
    assert why_not["full"].rule == "estimate" and why_not["lora"].rule == "estimate"  # neither fits 8 GB


def test_70b_on_a_24gb_card_says_nothing_fits_and_what_would():
    plan = plan_for(goal="chat_format", data="instruction_pairs", gpu="24GB", model="70b")
    assert plan.estimate.fits is False
    joined = "\n".join(w.en for w in plan.warnings)
    assert "nothing fits" in joined
    assert "--model" in joined  # a smaller catalog model that fits this card
    assert "--gpu" in joined  # or a larger card


def test_fallback_to_the_first_adaptation_that_fits():
    # quality priority on a non-personal 24 GB card: full does not fit an 8B, LoRA does.
    plan = plan_for(goal="chat_format", data="instruction_pairs", gpu="a10g", model="8b")
    assert plan.adaptation == "lora"  # the next in the quality order, before QLoRA
    assert any(a.method == "full" and a.rule == "estimate" for a in plan.alternatives)
    assert_every_stage_fits(plan)


def test_rlhf_plan_has_three_wired_stages_that_all_fit():
    plan = plan_for(goal="best_quality", data="instruction_pairs,preference_pairs", gpu="h100", model="8b")
    assert plan.pipeline == "rlhf"
    assert [s.name for s in plan.stages] == ["sft", "reward", "ppo"]
    assert [s.setup.train for s in plan.stages] == ["sft", "reward", "ppo"]
    reward, ppo = plan.stage("reward"), plan.stage("ppo")
    assert reward.base_from == "sft" and ppo.base_from == "sft" and ppo.reward_from == "reward"
    assert [s.data_format for s in plan.stages] == ["instruction", "preference", "prompt"]
    assert {s.setup.adaptation for s in plan.stages} == {plan.adaptation}
    assert_every_stage_fits(plan)


def test_no_bf16_card_trains_in_fp16():
    plan = plan_for(goal="chat_format", data="instruction_pairs", gpu="t4", model="1b")
    assert plan.stages[0].setup.precision == "fp16"  # LoRA on a frozen fp16 base: pure fp16, no fp32 master copy
    plan = plan_for(goal="chat_format", data="instruction_pairs", gpu="h100", model="1b")
    assert plan.stages[0].setup.precision == "bf16"


def test_sequence_is_capped_at_the_model_positions():
    plan = plan_for(goal="chat_format", data="instruction_pairs", gpu="h100", model="gpt2", seq_len=4096)
    assert plan.stages[0].setup.seq_len == 1024
    assert any("exceeds" in w.en and "1024" in w.en for w in plan.warnings)


def test_too_little_data_is_warned():
    plan = plan_for(goal="chat_format", data="instruction_pairs", gpu="h100", model="1b", data_count=300)
    assert any("too little data" in w.en for w in plan.warnings)
    assert any("§2" in w.en for w in plan.warnings)
    assert not any(
        "too little" in w.en for w in plan_for(goal="chat_format", data="instruction_pairs", gpu="h100", model="1b", data_count=50_000).warnings
    )


def test_hyper_parameters_come_from_the_table():
    plan = plan_for(goal="chat_format", data="instruction_pairs", gpu="rtx3060ti", model="7b")
    assert plan.stages[0].hyper.learning_rate == 2e-4 and plan.stages[0].hyper.epochs == 3
    assert "hp.sft.qlora" in rule_ids(plan)


def test_rule_of_thumb_is_scaled_and_explained():
    plan = plan_for(goal="chat_format", data="instruction_pairs", gpu="rtx3060ti", model="7b")
    spec, ref = model_spec("7b")
    assert plan.estimate.rule_of_thumb_gib == pytest.approx(6e9 * ref.params_total / 7e9 / GIB, abs=0.01)
    gap = abs(plan.estimate.device_gib - plan.estimate.rule_of_thumb_gib) / plan.estimate.rule_of_thumb_gib
    note = plan.estimate.rule_of_thumb_note
    assert "§5" in note and (("agrees" in note) == (gap <= RULE_OF_THUMB_GAP))
    scaled = plan_for(goal="chat_format", data="instruction_pairs", gpu="h100", model="70b").estimate.rule_of_thumb_note
    assert "scaled by" in scaled


def test_korean_warnings_and_notes():
    plan = plan_for(goal="quality_safety", data="instruction_pairs", gpu="h100", model="7b")
    assert any("선호도 데이터 없음" in w.ko for w in plan.warnings)
    assert "§5" in plan.estimate.rule_of_thumb_note_ko and "기준" in plan.estimate.rule_of_thumb_note_ko
    assert all(r.ko for r in plan.reasons) and all(a.why_not_ko for a in plan.alternatives)


def test_tiny_model_plans_offline():
    plan = plan_for(goal="chat_format", data="instruction_pairs", gpu="rtx4090", model="tiny")
    assert plan.model.key == "tiny" and plan.estimate.fits


def test_build_plan_keeps_its_old_signature():
    plan = build_plan("7b", Setup(adaptation="qlora"), pipeline="rlhf", gpu="rtx4090")
    assert [s.name for s in plan.stages] == ["sft", "reward", "ppo"]
    with pytest.raises(AdvisorError):
        build_plan("7b", Setup(), pipeline="sft", stage_setups={"ppo": Setup()})


# ------------------------------------------------------------------------------------------------ invariant
def _anything_fits(plan: Plan) -> bool:
    """Independently of the advisor's search: does any adaptation fit every stage with any knob set it may
    use (optimizer, checkpointing, parallel layout) at micro-batch 1 and the shortest sequence it considers? At
    micro-batch 1 a plan accumulates toward EFFECTIVE_BATCH sequences (the gradients then live across micro-steps,
    and the estimator prices them), except PPO and GRPO, whose rollouts grow with accumulation."""
    spec, _ = model_spec(plan.answers["model"])
    gpu = find_gpu(plan.answers["gpu"])
    count = plan.answers.get("gpu_count", 1)
    layouts = ("none",) if count == 1 else ("ddp", "fsdp")
    seq = min(MIN_SEQ, spec.max_positions)
    margin = Margin(display=gpu.consumer)
    for adaptation in ("full", "lora", "qlora"):
        precision = "bf16" if gpu.bf16 else ("fp16-mixed" if adaptation == "full" else "fp16")
        every_stage = True
        for _, train, *_ in PIPELINES[plan.pipeline]:
            stage_fits = any(
                margin.fits(
                    estimate(
                        spec,
                        Setup(
                            train=train,
                            adaptation=adaptation,
                            precision=precision,
                            optimizer=opt,
                            grad_ckpt=ckpt,
                            micro_batch=1,
                            seq_len=seq,
                            gpus=count,
                            parallel=layout,
                            grad_accum=1 if train in ("ppo", "grpo") else math.ceil(EFFECTIVE_BATCH / count),
                            # PPO/GRPO sequences hold prompt + response: the estimator refuses less
                            response_len=min(Setup().response_len, seq // 2),
                        ),
                    ),
                    gpu.memory_bytes,
                )
                for opt in ("adamw", "adamw8bit", "paged_adamw8bit")
                for ckpt in (False, True)
                for layout in layouts
            )
            every_stage = every_stage and stage_fits
        if every_stage:
            return True
    return False


def check_fit_invariant(plan: Plan) -> None:
    if plan.estimate.fits:
        assert_every_stage_fits(plan)
    else:
        assert not _anything_fits(plan), "the plan says nothing fits, but a candidate does"
        assert any("nothing fits" in w.en for w in plan.warnings)


GOALS = [c.value for c in questions()[0].choices]
DATA_SETS = ["instruction_pairs", "preference_pairs", "instruction_pairs,preference_pairs", "reward_signal", "raw_text"]


# ~0.5 s a draw (a search over every adaptation and knob set when nothing fits): the fixed edge cases below keep
# the invariant in the fast suite
@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    goal=st.sampled_from(GOALS),
    data=st.sampled_from(DATA_SETS),
    gpu=st.sampled_from(["rtx3060ti", "t4", "rtx4090", "a100-40gb", "h100", "12GB"]),
    count=st.sampled_from([1, 2]),
    model=st.sampled_from(["1b", "7b", "8b", "14b", "70b"]),
    priority=st.sampled_from(["quality", "cost"]),
    seq_len=st.sampled_from([512, 2048, 8192]),
)
def test_fit_invariant_over_answer_combinations(goal, data, gpu, count, model, priority, seq_len):
    plan = plan_for(goal=goal, data=data, gpu=gpu, gpu_count=count, model=model, priority=priority, seq_len=seq_len)
    check_fit_invariant(plan)


@pytest.mark.parametrize(
    "answers",
    [
        dict(goal="chat_format", data="instruction_pairs", gpu="rtx3060ti", model="8b"),  # tight: only QLoRA, maybe shortened
        dict(goal="chat_format", data="instruction_pairs", gpu="rtx3060ti", model="13b"),
        dict(goal="best_quality", data="preference_pairs", gpu="rtx3060", model="7b", seq_len=8192),
        dict(goal="domain", data="raw_text", gpu="t4", model="14b"),
        dict(goal="quality_safety", data="preference_pairs", gpu="h100", model="405b", gpu_count=2),
        # found by the fuzz above (CI, 2026-12-07): DPO on a T4 at 512 tokens (judged with the plan's accumulation),
        # and GRPO asked at 2048 tokens, where a shorter sequence must be split into prompt and response afresh
        dict(goal="quality_safety", data="preference_pairs", gpu="t4", model="14b", priority="quality", seq_len=512),
        dict(goal="quality_safety", data="reward_signal", gpu="t4", model="14b", priority="quality", seq_len=2048),
    ],
)
def test_fit_invariant_at_the_edges(answers):
    check_fit_invariant(plan_for(**answers))


def test_a_grpo_plan_shortened_below_its_response_length_splits_the_sequence_again():
    """Asked at 2048 tokens (a 512-token response), 14B GRPO fits a T4 only much shorter: the search probes each
    length with the prompt/response split the plan gets at it, so it finds 384 (192 + 192), not nothing."""
    plan = plan_for(goal="quality_safety", data="reward_signal", gpu="t4", model="14b", priority="quality", seq_len=2048)
    (stage,) = plan.stages
    assert plan.estimate.fits and stage.setup.train == "grpo" and stage.setup.seq_len == 384 and stage.setup.response_len == 192


def test_shortened_sequence_is_said():
    plan = plan_for(goal="chat_format", data="instruction_pairs", gpu="rtx3060ti", model="7b", seq_len=8192)
    if plan.estimate.fits and plan.stages[0].setup.seq_len < 4096:
        assert any("cut to" in w.en for w in plan.warnings)


# ------------------------------------------------------------------------------------------------ questions
def test_answers_fields_are_the_question_ids():
    from dataclasses import fields

    assert [f.name for f in fields(Answers) if f.name != "extra"] == [
        "goal",
        "data",
        "gpu",
        "data_count",
        "priority",
        "gpu_count",
        "time_budget_hours",
        "budget_usd",
        "price",
        "reward",
        "model",
        "seq_len",
    ]
    assert {f.name for f in fields(Answers)} - {"extra"} == {q.id for q in QUESTIONS}


def test_question_declarations_are_complete_and_cite_real_rules():
    known = set(rules.methods()) | set(rules.adaptations()) | {r["id"] for r in rules.selection_rows()} | {r["id"] for r in rules.rlhf_vs_dpo()}
    for q in questions():
        assert q.kind in ("choice", "int", "float", "text", "bool")
        for name in ("label", "help"):
            for lang in ("ko", "en"):
                assert q.text(name, lang).strip() and "\n" not in q.text(name, lang)
        assert set(q.rules) <= known, q.id
        assert bool(q.choices) == (q.kind == "choice")
        for c in q.choices:
            for name in ("label", "explain"):
                for lang in ("ko", "en"):
                    assert c.text(name, lang).strip() and "\n" not in c.text(name, lang)
            assert set(c.rules) <= known, (q.id, c.value)
    goal_rules = {r for c in questions()[0].choices for r in c.rules}
    assert {"sel.chat_format", "sel.quality_safety", "sel.best_quality_resources", "sel.limited_simple", "sel.domain"} <= goal_rules


def test_answers_parse_lists_strings_and_defaults():
    a = Answers.from_mapping({"goal": "Chat-Format", "data": ["instruction_pairs", "preference_pairs"], "gpu": "RTX 4090", "gpu-count": "2"})
    assert a.goal == "chat_format" and a.data == ("instruction_pairs", "preference_pairs") and a.gpu_count == 2
    assert a.model == "7b" and a.priority == "quality" and a.seq_len == 2048 and a.budget_usd is None
    b = Answers.from_mapping({"goal": "domain", "data": "raw_text,instruction_pairs", "gpu": "24GB", "data_count": "12,000"})
    assert b.data == ("raw_text", "instruction_pairs") and b.data_count == 12000
    assert Answers.from_mapping(b.to_data()) == b
    assert "budget_usd" not in b.to_data()  # unanswered: left out (TOML has no null)


@pytest.mark.parametrize(
    "answers, needle",
    [
        ({"goal": "win", "data": "raw_text", "gpu": "h100"}, "valid: chat_format, quality_safety"),
        ({"goal": "domain", "data": "pdfs", "gpu": "h100"}, "valid (several: comma-separated): instruction_pairs"),
        ({"goal": "domain", "data": "raw_text", "gpu": "h100", "gpu_count": 0}, "at least 1"),
        ({"goal": "domain", "data": "raw_text", "gpu": "h100", "gpu_count": "two"}, "whole number"),
        ({"goal": "domain", "data": "raw_text", "gpu": "rtx9999"}, "unknown GPU"),
        ({"goal": "domain", "data": "raw_text"}, "missing answer(s): --gpu"),
        ({"goal": "domain", "data": "raw_text", "gpu": "h100", "colour": "red"}, "unknown answer(s) colour"),
    ],
)
def test_bad_answers_name_the_valid_ones(answers, needle):
    with pytest.raises(AdvisorError) as exc:
        Answers.from_mapping(answers)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_unknown_model_is_an_advisor_error():
    with pytest.raises(AdvisorError, match="unknown model"):
        plan_for(goal="domain", data="raw_text", gpu="h100", model="llama-9000")


# ------------------------------------------------------------------------------------------------ command line
BASE = ["advise", "--goal", "chat_format", "--data", "instruction_pairs", "--gpu", "rtx3060ti", "--model", "7b"]
WIDE = {"COLUMNS": "250"}


def test_json_round_trips_into_a_plan(advisor_main):
    out = advisor_main(*BASE, "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    plan = Plan.from_data(data)
    assert plan.pipeline == "sft" and plan.adaptation == "qlora" and data["schema"] == "advisor.plan/2"
    assert plan.to_data() == plan_for(goal="chat_format", data="instruction_pairs", gpu="rtx3060ti", model="7b").to_data()


def test_save_writes_a_loadable_plan_and_refuses_to_overwrite(tmp_path, advisor_main):
    target = tmp_path / "plan.toml"
    first = advisor_main(*BASE, "--save", str(target), env=WIDE)
    assert first.returncode == 0, first.stderr
    plan = load_plan(target)
    assert plan.pipeline == "sft" and plan.answers["gpu"] == "rtx3060ti"
    before = target.read_text()
    again = advisor_main("advise", "--goal", "domain", "--data", "raw_text", "--gpu", "h100", "--save", str(target))
    assert again.returncode == 2 and "--force" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    assert target.read_text() == before
    forced = advisor_main("advise", "--goal", "domain", "--data", "raw_text", "--gpu", "h100", "--save", str(target), "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    assert load_plan(target).answers["goal"] == "domain"


def test_answers_file_and_flags_override(tmp_path, advisor_main):
    path = tmp_path / "answers.toml"
    path.write_text('goal = "domain"\ndata = ["raw_text"]\ngpu = "h100"\nmodel = "8b"\n', encoding="utf-8")
    assert load_answers(path)["goal"] == "domain"
    out = advisor_main("advise", "--answers", str(path), "--gpu", "rtx4090", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    # domain row: LoRA/QLoRA, in the quality order (the default priority) LoRA first, and an 8B LoRA fits 24 GB
    assert data["answers"]["goal"] == "domain" and data["answers"]["gpu"] == "rtx4090" and data["adaptation"] == "lora"


def test_human_output_in_korean_quotes_the_document(advisor_main):
    out = advisor_main(*BASE, "--lang", "ko", env=WIDE)
    assert out.returncode == 0, out.stderr
    for needle in ("추천", "대화 형식만 가르치고 싶다", "개인 GPU로 파인튜닝 하고 싶다", "sel.chat_format", "sel.personal_gpu", "on the card"):
        assert needle in out.stdout, needle


def test_language_defaults_from_the_locale(advisor_main):
    ko = advisor_main(*BASE, env=WIDE | {"LANG": "ko_KR.UTF-8", "LC_ALL": ""})
    en = advisor_main(*BASE, env=WIDE | {"LANG": "en_US.UTF-8", "LC_ALL": ""})
    assert "추천" in ko.stdout and "Recommendation" in en.stdout
    from advisor.commands.advise import default_lang

    assert default_lang({"LC_ALL": "ko_KR.UTF-8", "LANG": "en_US"}) == "ko"
    assert default_lang({"LANG": "C"}) == "en"


def test_wizard_and_advise_read_the_locale_the_same_way(advisor_main):
    """Issue 14 §5: LC_MESSAGES=ko_KR with LANG=en_US made the wizard Korean and `advise` English."""
    from advisor import lang
    from advisor.commands.advise import default_lang as advise_lang
    from advisor.tui import i18n

    wizard_lang = lang.default_lang  # what advisor/commands/wizard.py calls; the wizard's module keeps no copy
    assert not hasattr(i18n, "default_lang")

    env = {"LC_MESSAGES": "ko_KR.UTF-8", "LANG": "en_US.UTF-8"}
    assert advise_lang is wizard_lang
    assert advise_lang(env) == "ko"
    out = advisor_main(*BASE, env=WIDE | env | {"LC_ALL": ""})
    assert "추천" in out.stdout


def test_english_output_has_reasons_alternatives_estimate_and_comparison(advisor_main):
    out = advisor_main("advise", "--goal", "quality_safety", "--data", "preference_pairs", "--gpu", "rtx4090", "--lang", "en", env=WIDE)
    assert out.returncode == 0, out.stderr
    for needle in (
        "Recommendation: DPO with LoRA",
        "Why",
        "Alternatives considered",
        "RLHF vs DPO (§6)",
        "Implementation difficulty",
        "allocated peak",
        "Rule of thumb",
        "sel.limited_simple",
    ):
        assert needle in out.stdout, needle


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--goal", "fame", "--data", "raw_text", "--gpu", "h100"], "unknown choice 'fame'"),
        (["--goal", "domain", "--data", "videos", "--gpu", "h100"], "valid (several: comma-separated)"),
        (["--goal", "domain", "--data", "raw_text", "--gpu", "rtx9999"], "unknown GPU 'rtx9999'"),
        (["--goal", "domain", "--data", "raw_text", "--gpu", "h100", "--gpu-count", "x"], "--gpu-count: expected a whole number"),
        (["--goal", "domain", "--data", "raw_text", "--gpu", "h100", "--model", "llama-9000"], "unknown model 'llama-9000'"),
        (["--data", "raw_text", "--gpu", "h100"], "missing answer(s): --goal"),
        (["--goal", "domain", "--data", "raw_text", "--gpu", "h100", "--lang", "fr"], "invalid choice"),
        (["--answers", "/nonexistent/answers.toml"], "not found"),
    ],
)
def test_bad_answers_are_one_line_exit_2(args, needle, advisor_main):
    out = advisor_main("advise", *args)
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def test_advise_loads_no_torch_transformers_or_textual():
    code = (
        "import contextlib, io, json, sys\n"
        "from advisor.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['advise', '--goal', 'best_quality', '--data', 'instruction_pairs,preference_pairs', '--gpu', 'h100']) == 0\n"
        "    assert main(['advise', '--goal', 'chat_format', '--data', 'instruction_pairs', '--gpu', 'rtx3060ti', '--json']) == 0\n"
        "heavy = ('torch', 'transformers', 'peft', 'bitsandbytes', 'trl', 'accelerate', 'textual', 'datasets')\n"
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


# ------------------------------------------------------------------------------------------------ stage table width
RLHF_ARGS = ["--goal", "quality_safety", "--data", "instruction_pairs,preference_pairs", "--gpu", "h100", "--model", "8b"]
SINGLE_ARGS = ["--goal", "domain", "--data", "raw_text", "--gpu", "24GB"]
STAGE_TITLE = {"en": "stages", "ko": "단계"}
STAGE_LEGEND = {"en": "batch: micro-batch × gradient accumulation", "ko": "배치: 마이크로 배치 × 그래디언트 누적"}
NEXT_SECTION = {"en": "Why", "ko": "이유"}


def stage_table_lines(stdout: str, lang: str) -> list[str]:
    """The stage table part of `advisor advise`'s human output: from its title to the section after it."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(STAGE_TITLE[lang]))
    end = next(i for i, line in enumerate(lines) if i > start and line.strip() == NEXT_SECTION[lang])
    return lines[start:end]


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("lang", ["en", "ko"])
@pytest.mark.parametrize(
    "args, answers, lrs",
    [
        (
            RLHF_ARGS,
            dict(goal="quality_safety", data="instruction_pairs,preference_pairs", gpu="h100", model="8b"),
            {"sft": "2e-04", "reward": "1e-04", "ppo": "1.41e-05"},
        ),
        (SINGLE_ARGS, dict(goal="domain", data="raw_text", gpu="24GB"), {"sft": "2e-04"}),
    ],
    ids=["rlhf", "single"],
)
def test_stage_table_is_readable_in_a_narrow_terminal(args, answers, lrs, lang, columns, advisor_main):
    plan = plan_for(**answers)
    assert [s.name for s in plan.stages] == list(lrs)  # the scenario is still the one this test means
    out = advisor_main("advise", *args, "--lang", lang, env={"COLUMNS": str(columns)})
    assert out.returncode == 0, out.stderr
    table = stage_table_lines(out.stdout, lang)
    text = "\n".join(table)
    assert "…" not in text, text
    assert table[0].startswith(f"{STAGE_TITLE[lang]} (GiB") and table[-1].startswith(STAGE_LEGEND[lang]), text
    # title, header, rule, one line per stage, legend: no header or cell wrapped onto a second line
    assert len(table) == 3 + len(plan.stages) + 1, text
    headers = (
        ("stage", "data", "inputs", "batch", "tokens", "lr", "epochs", "GiB", "fits")
        if lang == "en"
        else ("단계", "데이터", "입력", "배치", "토큰", "학습률", "에폭", "GiB", "들어감")
    )
    assert table[1].split() == list(headers), text
    spec, _ = model_spec(plan.answers["model"])
    for stage, row in zip(plan.stages, table[3:-1], strict=False):
        cells = row.split()
        gib = f"{estimate(spec, stage.setup).device_bytes / GIB:.1f}"
        setup = stage.setup
        assert cells[0] == stage.name and cells[1] == stage.data_format, text
        for needle in (f"{setup.micro_batch}×{setup.grad_accum}", str(setup.seq_len), lrs[stage.name], gib):
            assert needle in cells, (needle, text)
    ppo = [row for row in table if row.split()[:1] == ["ppo"]]
    assert not ppo or "sft, reward" in ppo[0], text  # starts from the SFT model, scored by the reward model
