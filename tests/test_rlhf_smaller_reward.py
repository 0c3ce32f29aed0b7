"""Issue 16: RLHF with a smaller reward/value model of the policy's family (the InstructGPT practice: a 6B reward
model for a 175B policy). The estimator prices PPO and the reward stage with it, `advisor estimate
--reward-value-model` asks for it, advise plans it when a same-size reward and value model do not fit, the plan keeps
it, and the generated scripts train and load it."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from advisor.advice.advise import advise
from advisor.advice.hardware import Hw
from advisor.advice.reward_size import family_reward_models
from advisor.answers import Answers
from advisor.plan import ModelRef, load_plan, save_plan
from advisor.planning import build_plan, model_spec, stage_models, stages_as_run
from advisor.scriptgen import write_run
from estimators import Setup, estimate
from estimators.catalog import TINY_SPEC
from estimators.errors import EstimateError
from estimators.fit import fit_report
from estimators.gpus import find_gpu
from estimators.result import phase_total
from estimators.timing import step_time

POLICY, _ = model_spec("70b")  # Llama 3.1 70B
SMALL, _ = model_spec("8b")  # Llama 3.1 8B: same model_type and vocabulary (128,256)
PPO = Setup(train="ppo", adaptation="lora", seq_len=1024, response_len=256, micro_batch=2)
# Llama 3.1 8B as a seq-cls model: its 8,030,261,248 parameters less the untied lm_head (128,256 x 4,096 = 525,336,576)
SEQCLS_8B = 8_030_261_248 - 128_256 * 4_096
H = 4_096
VALUE_TERMS = ("reward model", "value model", "value model optimizer states", "value model activations", "value model gradients")
BASE = dict(goal="quality_safety", data="instruction_pairs,preference_pairs", priority="quality", model="70b")


def terms(est, phase: str) -> dict[str, int]:
    return {v.name: v.bytes for v in est.phases[phase]}


def config_of(text: str) -> dict:
    return next(ast.literal_eval(n.value) for n in ast.parse(text).body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "CONFIG")


# ------------------------------------------------------------------------------------------------ estimator
def test_default_prices_reward_and_value_at_the_policy_as_before():
    """No reward model given, or the policy itself: the numbers of the code before this change (840,186,331,136 bytes
    at the peak, read off the previous commit's estimator for this set-up)."""
    before = estimate(POLICY, PPO)
    assert before.peak_allocated == 840_186_331_136 and before.peak_phase == "backward (value model)"
    same = estimate(POLICY, PPO, POLICY)
    assert {k: phase_total(v) for k, v in same.phases.items()} == {k: phase_total(v) for k, v in before.phases.items()}
    assert before.reward_model is None and "the size of the policy" in before.warnings[-1]


def test_a_smaller_reward_model_lowers_the_ppo_peak_by_its_terms():
    big, small = estimate(POLICY, PPO), estimate(POLICY, PPO, SMALL)
    fwd_big, fwd_small = terms(big, "forward"), terms(small, "forward")
    # hand-checked: the frozen reward model and the trained value model hold the 8B seq-cls weights in bf16 plus the
    # score head (h weights); the value model's AdamW keeps two bf16 states per parameter (the score head is not counted)
    assert fwd_small["reward model"] == SEQCLS_8B * 2 + H * 2
    assert fwd_small["value model"] == SEQCLS_8B * 2 + H * 2
    assert fwd_small["value model optimizer states"] == SEQCLS_8B * 2 * 2
    # everything else (the policy, its LoRA, activations, rollout logits) is the policy's, unchanged
    for name in set(fwd_big) - set(VALUE_TERMS):
        assert fwd_small[name] == fwd_big[name], name
    saved = sum(fwd_big[n] - fwd_small[n] for n in VALUE_TERMS if n in fwd_big)
    assert phase_total(big.phases["forward"]) - phase_total(small.phases["forward"]) == saved
    assert small.peak_allocated < big.peak_allocated - 300 * 2**30  # a 70B reward + value model is ~4 x 130 GiB
    assert small.reward_model == SMALL
    notes = {v.name: v.note for v in small.phases["forward"]}
    assert all(notes[n].endswith("priced at Llama 3.1 8B") for n in VALUE_TERMS if n in notes)
    assert "Llama 3.1 8B, not the policy's Llama 3.1 70B" in small.warnings[-1]


def test_the_reward_stage_trains_the_smaller_model():
    reward = Setup(train="reward", adaptation="lora", seq_len=1024)
    assert estimate(POLICY, reward, SMALL).peak_allocated == estimate(SMALL, reward).peak_allocated
    assert estimate(POLICY, reward, SMALL).model == SMALL


def test_another_vocabulary_or_kind_is_refused():
    qwen, _ = model_spec("qwen2.5-7b")
    with pytest.raises(EstimateError, match="152,064 tokens .* 128,256: PPO scores the policy's token ids"):
        estimate(POLICY, PPO, qwen)
    with pytest.raises(EstimateError, match="applies to --train reward or ppo, not dpo"):
        estimate(POLICY, PPO.with_(train="dpo"), SMALL)


def test_the_time_model_runs_the_reward_and_value_models_at_the_smaller_size():
    gpu = find_gpu("h100")
    big = {t.name: t.seconds for t in step_time(POLICY, PPO, gpu).terms}
    small_st = step_time(POLICY, PPO, gpu, reward_model=SMALL)
    small = {t.name: t.seconds for t in small_st.terms}
    assert big == {t.name: t.seconds for t in step_time(POLICY, PPO, gpu, reward_model=None).terms}
    for name in big:  # the policy's training, its generation and log-probs are the policy's
        if name not in ("value model train", "reference, reward and value scoring"):
            assert small[name] == big[name], name
    assert small["value model train"] < big["value model train"] / 5  # 8B against 70B: about 9x fewer FLOPs
    # the reference forward stays the 70B one: scoring drops by less than two thirds
    assert big["reference, reward and value scoring"] / 3 < small["reference, reward and value scoring"] < big["reference, reward and value scoring"]
    assert next(t.note for t in small_st.terms if t.name == "value model train") == "reward and value models: Llama 3.1 8B"


def test_the_fit_solver_prices_with_it():
    """`estimators.fit` (the wizard's "make it fit" and advise's sizing): an 8B PPO run is over an H100 with an 8B reward
    and value model and fits with Llama 3.2 1B (same vocabulary), with room for a larger micro-batch."""
    policy, tiny_rm = model_spec("8b")[0], model_spec("llama-3.2-1b")[0]
    setup = Setup(train="ppo", adaptation="lora", seq_len=1024, response_len=256)
    cap = find_gpu("h100").memory_bytes
    same, small = fit_report(policy, setup, cap), fit_report(policy, setup, cap, reward_model=tiny_rm)
    assert not same.fits and same.max_micro_batch == 0 and same.fixes
    assert small.fits and small.max_micro_batch > 1 and small.fixes == ()
    assert small.estimate.peak_allocated == estimate(policy, setup, tiny_rm).peak_allocated


# ------------------------------------------------------------------------------------------------ CLI
def test_estimate_flag_prices_it_and_json_says_which(advisor_main):
    out = advisor_main("estimate", "--model", "70b", "--train", "ppo", "--reward-value-model", "8b", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["reward_value_model"] | {"resolved_from": ""} == {
        "name": "Llama 3.1 8B",
        "key": "llama-3.1-8b",
        "hf_id": "meta-llama/Llama-3.1-8B",
        "resolved_from": "",
        "params_total": SEQCLS_8B + H,
        "vocab_size": 128_256,
        "separate": True,
    }
    assert data["model"]["name"] == "Llama 3.1 70B"
    default = json.loads(advisor_main("estimate", "--model", "70b", "--train", "ppo", "--json").stdout)
    assert default["reward_value_model"]["name"] == "Llama 3.1 70B" and default["reward_value_model"]["separate"] is False
    assert data["peak"]["allocated"]["bytes"] < default["peak"]["allocated"]["bytes"]
    notes = {t["name"]: t["note"] for t in data["terms"]}
    assert notes["reward model"].endswith("priced at Llama 3.1 8B")
    sft = json.loads(advisor_main("estimate", "--model", "70b", "--json").stdout)
    assert "reward_value_model" not in sft


def test_estimate_flag_times_it_too(advisor_main):
    args = ("estimate", "--model", "70b", "--train", "ppo", "--gpu", "h100", "--gpus", "8", "--parallel", "fsdp", "--json")
    big = json.loads(advisor_main(*args).stdout)["time"]
    small = json.loads(advisor_main(*args, "--reward-value-model", "8b").stdout)["time"]
    assert small["step_seconds"] < big["step_seconds"]
    assert next(t for t in small["terms"] if t["name"] == "value model train")["note"] == "reward and value models: Llama 3.1 8B"


def test_help_shows_the_flag_with_an_example(advisor_main):
    out = advisor_main("estimate", "--help")
    assert "--reward-value-model MODEL" in out.stdout and "InstructGPT" in out.stdout
    assert "advisor estimate --model 70b --train ppo --reward-value-model 8b" in out.stdout


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--reward-value-model", "no-such-model"], "--reward-value-model: unknown model 'no-such-model'"),
        (["--reward-value-model", "qwen2.5-7b"], "PPO scores the policy's token ids"),
        (["--train", "sft", "--reward-value-model", "8b"], "applies to --train reward or ppo, not sft"),
    ],
)
def test_bad_reward_value_model_is_one_line_exit_2(advisor_main, args, needle):
    full = ["estimate", "--model", "70b"] + (["--train", "ppo"] if "--train" not in args else []) + args
    out = advisor_main(*full)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], out.stderr


# ------------------------------------------------------------------------------------------------ advise
def test_family_candidates_share_model_type_and_vocabulary_largest_first():
    assert family_reward_models(POLICY) == ["llama-3.1-8b", "llama-3.2-3b", "llama-3.2-1b"]  # Llama 2 / SmolLM2: other vocabularies
    assert family_reward_models(model_spec("llama-3-70b")[0])[0] == "llama-3-8b"  # of two 8B rows, its own release


@pytest.fixture(scope="module")
def small_rlhf():
    return advise(Answers.from_mapping(dict(BASE, gpu="h100", gpu_count=8)))


def test_advise_plans_rlhf_with_the_largest_smaller_reward_model_that_fits(small_rlhf):
    plan = small_rlhf
    hw = Hw(find_gpu("h100"), 8)
    # same-size RLHF does not fit on these cards: the PPO stage as planned, priced with a 70B reward and value model
    assert not hw.fits(estimate(POLICY, plan.stage("ppo").setup))
    assert plan.pipeline == "rlhf"
    reward, ppo = plan.stage("reward"), plan.stage("ppo")
    assert reward.reward_value_model.key == ppo.reward_value_model.key == "llama-3.1-8b"
    assert plan.stage("sft").reward_value_model is None
    assert reward.base_from == "" and ppo.base_from == "sft" and ppo.reward_from == "reward"
    for stage in plan.stages:  # the stage's memory is the one priced with the smaller model, and it fits
        spec, rm = stage_models(plan, stage)
        est = estimate(spec, stage.setup, rm)
        assert stage.memory.fits and stage.memory.device_gib == pytest.approx(est.device_bytes / 2**30, abs=0.01)
    why = next(r for r in plan.reasons if "InstructGPT" in r.en)
    assert why.rule == "rlhf" and "Llama 3.1 8B" in why.en and "Llama 3.1 70B do not fit" in why.en
    assert "InstructGPT" in why.ko and "Llama 3.1 8B" in why.ko
    ample = next(r for r in plan.reasons if r.rule == "sel.best_quality_resources")
    # the time and cost of this RLHF plan next to DPO's
    assert "RLHF with a Llama 3.1 8B reward/value model: 3 stages, ~" in ample.en and "; DPO: ~" in ample.en
    assert f"~{plan.time.hours:.1f} h" in ample.en


def test_advise_keeps_dpo_when_not_even_the_smallest_fits():
    plan = advise(Answers.from_mapping(dict(BASE, gpu="h100", gpu_count=1)))
    assert plan.pipeline == "sft+dpo"  # instruction pairs too: SFT first, then DPO
    assert all(s.reward_value_model is None for s in plan.stages)
    limited = next(r for r in plan.reasons if r.rule == "sel.limited_simple")
    assert "nor with a smaller reward/value model of its family (down to llama-3.2-1b)" in limited.en


def test_same_size_rlhf_that_fits_stays_same_size():
    plan = advise(Answers.from_mapping(dict(BASE, model="7b", gpu="h100")))
    assert plan.pipeline == "rlhf" and all(s.reward_value_model is None for s in plan.stages)
    assert plan.stage("reward").base_from == "sft"


def test_plan_toml_round_trip_keeps_the_reward_model_and_its_pricing(small_rlhf, tmp_path):
    path = save_plan(small_rlhf, tmp_path / "plan.toml")
    assert "[stages.reward_value_model]" in path.read_text()
    again = load_plan(path)
    assert again.stage("reward").reward_value_model == small_rlhf.stage("reward").reward_value_model
    assert stage_models(again, again.stage("ppo"))[1] == SMALL
    assert stage_models(again, again.stage("sft"))[1] is None
    before = [s.setup for s in again.stages]
    assert stages_as_run(again) == [] and [s.setup for s in again.stages] == before
    default = build_plan("7b", Setup(adaptation="lora"), pipeline="rlhf", gpu="h100")
    assert "reward_value_model" not in default.to_toml()


def test_generated_scripts_train_and_load_the_smaller_model(small_rlhf, tmp_path):
    write_run(small_rlhf, tmp_path / "run")
    reward = config_of((tmp_path / "run" / "train_reward.py").read_text())
    assert reward["model"] == "meta-llama/Llama-3.1-8B" and reward["base_from"] == ""
    ppo = config_of((tmp_path / "run" / "train_ppo.py").read_text())
    assert ppo["model"] == "meta-llama/Llama-3.1-70B" and ppo["base_from"] == "outputs/sft" and ppo["reward_model"] == "outputs/reward"
    readme = (tmp_path / "run" / "README.md").read_text()
    assert "**The reward model is smaller than the policy**: stage reward trains `meta-llama/Llama-3.1-8B`" in readme
    assert (
        "InstructGPT" in readme
        and "| 2 | reward | `train_reward.py` | reward (preference data) | bundled sample (`data/`) | `meta-llama/Llama-3.1-8B` |" in readme
    )


# ------------------------------------------------------------------------------------------------ a real run
_ENV = {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_DATASETS_OFFLINE": "1", "TRL_EXPERIMENTAL_SILENCE": "1"}


def _run(run_dir: Path, python: str, script: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [python, script, "--max-steps", "2"], cwd=run_dir, capture_output=True, text=True, env=dict(os.environ, **_ENV), timeout=300
    )


@pytest.mark.slow
def test_tiny_ppo_with_a_smaller_tiny_reward_model_trains(tmp_path, ppo_python):
    """SFT on the tiny model, then the reward stage trains a smaller tiny Llama (1 layer, hidden 32) with the run's
    tokenizer, then trl 1.12's PPO scores the tiny policy's rollouts with it and trains a value model started from it."""
    run_dir = tmp_path / "run"
    small_dir = run_dir / "tiny-reward"
    small = TINY_SPEC.with_(name="tiny reward (1 layer)", hidden_size=32, intermediate_size=64, num_layers=1, num_heads=2, num_kv_heads=2)
    ref = ModelRef(key=str(small_dir), name=small.name, hf_id=str(small_dir), resolved_from="test", spec={})
    setup = Setup(adaptation="lora", seq_len=64, response_len=8)
    plan = build_plan("tiny", setup, pipeline="rlhf", output_dir="outputs", reward_value=(small, ref))
    for stage in plan.stages:
        stage.hyper.save_steps = 2
    write_run(plan, run_dir)
    assert config_of((run_dir / "train_reward.py").read_text())["model"] == str(small_dir)
    sft = _run(run_dir, sys.executable, "train_sft.py")
    assert sft.returncode == 0, sft.stderr[-3000:]
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM  # the smaller model, with the run's tokenizer

    tokenizer = AutoTokenizer.from_pretrained(run_dir / "tiny-model")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(small_dir)
    tokenizer.save_pretrained(small_dir)
    reward = _run(run_dir, sys.executable, "train_reward.py")
    assert reward.returncode == 0, reward.stderr[-3000:]
    merged = run_dir / "outputs" / "reward" / "merged" / "config.json"
    assert json.loads(merged.read_text())["hidden_size"] == 32  # the reward model is the smaller one
    ppo = _run(run_dir, ppo_python, "train_ppo.py")
    assert ppo.returncode == 0, ppo.stderr[-3000:]
    value = run_dir / "outputs" / "ppo" / "checkpoint-2" / "value_model" / "config.json"
    assert json.loads(value.read_text())["hidden_size"] == 32  # the value model started from it
    shutil.rmtree(run_dir / "outputs", ignore_errors=True)
