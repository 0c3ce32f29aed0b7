"""Training kinds (reward, DPO, PPO, GRPO): hand-checked new terms, reference-model rules, the phase that peaks,
and one-line errors for reference choices the trainers cannot honour."""

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from estimators import Setup, estimate
from estimators import kind_models as km
from estimators import kind_rollout as kr
from estimators import terms as t
from estimators.catalog import catalog
from estimators.kind_phases import LOGIT_TERMS
from estimators.model import ModelSpec
from estimators.params import count_params

# A toy Llama: h=64, I=128, 2 layers, 4 heads of 16, 2 KV heads (kv width 32), vocab 1000, untied head.
TINY = ModelSpec(name="tiny", model_type="llama", hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4, num_kv_heads=2, vocab_size=1000)
LLAMA8 = catalog()["llama-3.1-8b"]
TINY_TOTAL = 2 * 1000 * 64 + 2 * (64 * (64 + 32 + 32 + 64) + 3 * 64 * 128 + 2 * 64) + 64  # embed + head + layers + final norm


def names(est, phase=None):
    return [v.name for v in est.phases[phase or est.peak_phase]]


def all_names(est):
    return {v.name for vals in est.phases.values() for v in vals}


def term(est, name, phase=None):
    vals = est.phases[phase] if phase else [v for vals in est.phases.values() for v in vals]
    return next(v for v in vals if v.name == name)


# ---------------------------------------------------------------------------------------------- hand-checked terms
def test_tiny_total_is_what_the_hand_count_says():
    assert count_params(TINY).total == TINY_TOTAL == 202_048


def test_kv_cache_by_hand():
    # 2 (K and V) x 2 layers x kv width 32 x 2 bytes (bf16) x 3 sequences x 10 tokens
    assert kr.kv_cache(TINY, Setup(), 3, 10) == 2 * 2 * 32 * 2 * 3 * 10 == 7680
    assert kr.kv_cache(TINY, Setup(precision="fp32"), 3, 10) == 15360


def test_seqcls_params_drop_the_head_and_add_score():
    pc = km.seqcls_params(TINY)
    assert pc.total == TINY_TOTAL - 1000 * 64 + 64  # no lm_head, score = Linear(64, 1) without bias
    assert pc.lm_head == 64
    assert pc.total == pc.embedding + pc.lm_head + pc.linear + pc.linear_bias + pc.norm + pc.raw_linear


def test_score_head_by_hand():
    assert km.score_head(TINY, Setup(adaptation="full")) == 64 * 2 * 4  # weight, gradient, two AdamW states in bf16
    assert km.score_head(TINY, Setup(adaptation="lora")) == 64 * 2 * 5  # modules_to_save keeps the original too


def test_inference_layer_by_hand():
    # per token: residual in+out 2*2*64, q/k/v/out 2*(2*64 + 2*32), gate/up/product 3*2*128
    per_token = 2 * 2 * 64 + 2 * (2 * 64 + 2 * 32) + 3 * 2 * 128
    assert kr.inference_layer(TINY, Setup(), 2, 8) == per_token * 16
    eager = Setup(attention="eager")
    assert kr.inference_layer(TINY, eager, 2, 8) - kr.inference_layer(TINY, Setup(), 2, 8) == 2 * 4 * 8 * 8 * (4 + 2)


def test_fused_logprob_tile_by_hand():
    # tile min(N, 4096) x 32768 in bf16 (TRL allocates the full chunk width, even for a 1000-word vocabulary)
    # + per token: gathered hidden (64 x 2) and 7 fp32 statistics
    assert kr.fused_logprob(TINY, Setup(), 10) == 10 * 32768 * 2 + 10 * (64 * 2 + 28)
    big = LLAMA8.vocab_size
    assert kr.fused_logprob(LLAMA8, Setup(), 10_000) == 4096 * 32768 * 2 + 10_000 * (4096 * 2 + 28) and big > 32768


def test_rollout_logits_by_hand():
    assert kr.rollout_logits(TINY, 4, 16) == 4 * 16 * 1000 * 4


def test_grpo_generation_batch_follows_the_generated_script():
    assert kr.grpo_generation_batch(Setup(train="grpo", num_generations=8)) == 8  # lcm(8, 1)
    assert kr.grpo_generation_batch(Setup(train="grpo", num_generations=8, micro_batch=4, grad_accum=4)) == 16
    s = Setup(train="grpo", num_generations=6, micro_batch=2, gpus=2, parallel="ddp")
    assert kr.grpo_generation_batch(s) == math.lcm(6, 4) // 2 == 6


# ---------------------------------------------------------------------------------------------- reward
def test_reward_has_no_vocabulary_logits_and_prices_the_score_head():
    s = Setup(train="reward", adaptation="full", micro_batch=2, seq_len=256)
    est = estimate(TINY, s)
    assert not all_names(est) & set(LOGIT_TERMS)
    assert term(est, "score head").bytes == km.score_head(TINY, s)
    assert est.params.total == TINY_TOTAL - 1000 * 64 + 64
    assert est.trainable == est.params.total
    # base weights of the seq-cls model: no 1000 x 64 head
    assert term(est, "base weights").bytes == (TINY_TOTAL - 64_000) * 2
    # chosen + rejected: activations of 2 x micro_batch sequences
    # (a seq-cls model has no LM head for TRL to fuse: its trained `score` keeps the final norm's output)
    sft2 = estimate(km.seqcls_spec(TINY), Setup(adaptation="full", micro_batch=4, seq_len=256, loss="full"))
    assert term(est, "saved activations", "forward").bytes == term(sft2, "saved activations", "forward").bytes


def test_reward_lora_trains_the_adapters_and_the_score_head():
    est = estimate(TINY, Setup(train="reward", adaptation="lora"))
    assert est.trainable == t.lora_params(TINY, Setup(adaptation="lora")) + 64


# ---------------------------------------------------------------------------------------------- dpo
def test_dpo_full_has_a_reference_copy_lora_has_none_precomputed_removes_it():
    full = estimate(LLAMA8, Setup(train="dpo", adaptation="full"))
    ref = term(full, "reference model")
    assert ref.bytes == t.base_weights(LLAMA8, Setup(adaptation="full")) == LLAMA8_BYTES
    assert all("reference model" in names(full, p) for p in full.phases)
    assert "reference forward" in full.phases

    lora = estimate(LLAMA8, Setup(train="dpo", adaptation="lora"))
    assert "reference model" not in all_names(lora)
    assert "reference forward" in lora.phases  # adapter-disabled base still runs a forward

    qlora = estimate(LLAMA8, Setup(train="dpo", adaptation="qlora"))
    assert "reference model" not in all_names(qlora)

    pre = estimate(LLAMA8, Setup(train="dpo", adaptation="full", ref_model="precomputed"))
    assert "reference model" not in all_names(pre) and "reference forward" not in pre.phases
    assert full.peak_allocated - pre.peak_allocated >= ref.bytes


LLAMA8_BYTES = 8_030_261_248 * 2


def test_dpo_runs_chosen_and_rejected_in_one_forward():
    dpo = estimate(LLAMA8, Setup(train="dpo", adaptation="lora", micro_batch=2, seq_len=1024, ref_model="copy"))
    sft = estimate(LLAMA8, Setup(adaptation="lora", micro_batch=4, seq_len=1024))
    assert term(dpo, "saved activations", "forward").bytes == term(sft, "saved activations", "forward").bytes
    # the reference forward runs while the policy's saved activations are alive
    ref_phase = dpo.phases["reference forward"]
    assert any(v.name == "saved activations" for v in ref_phase)
    assert not any(v.name in LOGIT_TERMS for v in ref_phase)


# ---------------------------------------------------------------------------------------------- grpo / ppo
def test_grpo_reference_follows_beta_and_the_method():
    full = estimate(LLAMA8, Setup(train="grpo", adaptation="full"))
    assert term(full, "reference model").bytes == LLAMA8_BYTES  # beta 0.04 in the generated script
    lora = estimate(LLAMA8, Setup(train="grpo", adaptation="lora"))
    assert "reference model" not in all_names(lora) and "reference forward" in lora.phases
    none = estimate(LLAMA8, Setup(train="grpo", adaptation="full", ref_model="none"))  # beta = 0.0, TRL's default
    assert "reference model" not in all_names(none) and "reference forward" not in none.phases


def test_grpo_kv_cache_is_the_generation_round():
    s = Setup(train="grpo", adaptation="lora", seq_len=64, response_len=16, num_generations=8)
    est = estimate(TINY, s)
    assert term(est, "KV cache", "generation").bytes == 2 * 2 * 32 * 2 * 8 * 64


def test_grpo_peak_is_generation_when_the_kv_cache_dominates_and_training_otherwise():
    gen = estimate(LLAMA8, Setup(train="grpo", adaptation="lora", num_generations=64, seq_len=8192, response_len=7680))
    assert gen.peak_phase == "generation"
    kv = term(gen, "KV cache", "generation").bytes
    assert kv == 2 * 32 * 1024 * 2 * 64 * 8192 and kv > gen.peak_allocated / 3
    train = estimate(LLAMA8, Setup(train="grpo", adaptation="full", grad_ckpt=False, micro_batch=8, seq_len=2048, response_len=256))
    assert not train.peak_phase.startswith("generation") and train.peak_phase != "reference forward"


def test_grpo_scores_only_completion_tokens():
    s = Setup(train="grpo", adaptation="lora", micro_batch=2, seq_len=2048, response_len=256)
    est = estimate(LLAMA8, s.with_(loss="full"))
    fwd = next(v for v in est.phases["forward"] if v.name == "logits and loss")
    assert fwd.bytes == t.logits_forward(LLAMA8, Setup(adaptation="lora", micro_batch=2, seq_len=256))
    # TRL's fused head (the default): the compact path scores the 2 x 256 completion tokens only
    fused = {v.name: v.bytes for v in estimate(LLAMA8, s).phases["forward"]}
    assert fused["fused head: saved"] == t.fused_head_saved(LLAMA8, Setup(adaptation="lora", micro_batch=2, seq_len=256))
    assert "logits and loss" not in fused


def test_ppo_prices_every_extra_model_as_its_own_term():
    full = estimate(LLAMA8, Setup(train="ppo", adaptation="full"))
    got = all_names(full)
    for name in (
        "reference model",
        "reward model",
        "value model",
        "value model optimizer states",
        "value model gradients",
        "KV cache",
        "rollout logits",
    ):
        assert name in got, name
    rm = km.seqcls_spec(LLAMA8)
    assert term(full, "value model").bytes == t.base_weights(rm, Setup(adaptation="full")) + 4096 * 2
    assert term(full, "reward model").bytes == term(full, "value model").bytes  # both bf16 seq-cls models
    lora = estimate(LLAMA8, Setup(train="ppo", adaptation="lora"))
    assert "reference model" not in all_names(lora)  # adapter-disabled policy
    assert "value model" in all_names(lora)  # trl 1.12 trains the value model in full even with LoRA
    qlora = estimate(LLAMA8, Setup(train="ppo", adaptation="qlora"))
    assert term(qlora, "reward model").bytes < term(lora, "reward model").bytes / 2  # 4-bit reward model


def test_ppo_peak_is_a_rollout_phase_for_large_rollouts_and_training_otherwise():
    big = estimate(LLAMA8, Setup(train="ppo", adaptation="lora", grad_accum=64, seq_len=2560, response_len=2048))
    assert big.peak_phase.startswith("generation")
    assert not estimate(LLAMA8, Setup(train="ppo", adaptation="lora")).peak_phase.startswith("generation")


def test_ppo_kv_cache_by_hand():
    s = Setup(train="ppo", adaptation="lora", micro_batch=3, seq_len=64, response_len=16)
    assert term(estimate(TINY, s), "KV cache", "generation").bytes == 2 * 2 * 32 * 2 * 3 * 64


# ---------------------------------------------------------------------------------------------- properties
KINDS = ("reward", "dpo", "ppo", "grpo")
kind_setups = (
    st.fixed_dictionaries(
        dict(
            train=st.sampled_from(KINDS),
            adaptation=st.sampled_from(("full", "lora", "qlora")),
            precision=st.sampled_from(("bf16", "fp16", "bf16-mixed", "fp32")),
            optimizer=st.sampled_from(("adamw", "adamw8bit", "paged_adamw8bit", "adafactor", "sgd")),
            micro_batch=st.integers(1, 8),
            seq_len=st.integers(1, 8192),
            grad_ckpt=st.sampled_from([None, True, False]),
            grad_accum=st.integers(1, 8),
            num_generations=st.integers(1, 16),
            response_len=st.integers(1, 2048),
            attention=st.sampled_from(("sdpa", "eager")),
            ref_model=st.sampled_from(("auto", "copy")),
        )
    )
    .filter(lambda d: not (d["adaptation"] == "qlora" and d["precision"] == "fp32"))
    .map(  # a Setup refuses it when built
        lambda d: Setup(**d)
    )
    .map(lambda s: s if s.train != "reward" else s.with_(ref_model="auto"))
    .map(  # PPO/GRPO sequences are prompt + response: the estimator refuses a response with no room for a prompt
        lambda s: s if s.train not in ("ppo", "grpo") or s.response_len + 8 <= s.seq_len else s.with_(seq_len=s.response_len + 8)
    )
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(model=st.sampled_from(["llama-3.1-8b", "gpt2", "qwen3-30b-a3b", "gemma-3-270m", "phi-3-mini-4k"]), setup=kind_setups)
def test_kinds_never_crash_and_are_consistent(model, setup):
    est = estimate(catalog()[model], setup)
    assert all(v.bytes >= 0 for vals in est.phases.values() for v in vals)
    assert est.peak_allocated == max(sum(v.bytes for v in vals) for vals in est.phases.values()) > 0
    assert sum(est.categories().values()) == est.peak_allocated
    bigger = estimate(catalog()[model], setup.with_(seq_len=setup.seq_len + 512))
    assert bigger.peak_allocated >= est.peak_allocated


# ---------------------------------------------------------------------------------------------- CLI
def test_estimate_json_names_the_extra_models(advisor_main):
    out = advisor_main("estimate", "--model", "8b", "--train", "ppo", "--method", "full", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["setup"]["train"] == "ppo"
    assert {"reference model", "reward model", "value model"} <= {t["name"] for t in data["terms"]}
    assert "generation" in data["phases"] and data["host_offload"]["bytes"] == 0


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--train", "rlhf"], "valid: sft, reward, dpo, ppo, grpo"),
        (["--ref-model", "frozen"], "valid: auto, copy, precomputed, none"),
        (["--train", "grpo", "--ref-model", "precomputed"], "exists only for DPO"),
        (["--train", "dpo", "--ref-model", "none"], "DPO needs reference log-probs"),
        (["--train", "ppo", "--ref-model", "none"], "PPO needs reference log-probs"),
        (["--ref-model", "copy"], "applies to --train dpo, ppo or grpo"),
        (["--train", "grpo", "--num-generations", "0"], "--num-generations must be a positive"),
    ],
)
def test_bad_kind_input_is_one_line_exit_2(advisor_main, args, needle):
    out = advisor_main("estimate", "--model", "7b", *args)
    assert out.returncode == 2, out.stdout
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], out.stderr


def test_reward_and_dpo_train_without_dropout():
    """RewardConfig / DPOConfig disable_dropout=True sets LoRA's dropout to p=0: no dropout masks or dropped copies
    (traced: DPO LoRA without checkpointing was 13 % high with them); SFT still pays for them."""
    for kind in ("reward", "dpo"):
        base = Setup(train=kind, adaptation="lora", grad_ckpt=False, seq_len=1024)
        assert estimate(LLAMA8, base).peak_allocated == estimate(LLAMA8, base.with_(lora_dropout=0.0)).peak_allocated
    sft = Setup(adaptation="lora", grad_ckpt=False, seq_len=1024)
    assert estimate(LLAMA8, sft).peak_allocated > estimate(LLAMA8, sft.with_(lora_dropout=0.0)).peak_allocated


def test_reward_full_embedding_gradient_comes_last():
    """No LM head: the seq-cls model's embedding gradient appears only at the end of backward, so the backward
    phases before it carry no V x h gradient (the tied-head SFT physics would add one)."""
    from estimators import terms as t
    from estimators.catalog import resolve_model

    qwen = resolve_model("qwen2.5-0.5b").spec
    setup = Setup(train="reward", adaptation="full", micro_batch=4, grad_ckpt=True)
    est = estimate(qwen, setup)
    emb = qwen.vocab_size * qwen.hidden_size * t.trainable_bytes_per_param(setup)
    layers = sum(v.bytes for v in est.phases["backward (layers)"] if v.category == "gradients")
    assert layers < t.gradients(qwen, setup) - emb + 1
    assert not any(v.name == "embedding gradient" for v in est.phases["backward (end)"])
