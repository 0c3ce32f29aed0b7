"""`--loss`: TRL's fused LM head (the default: what generated scripts run) against the HF causal-LM loss over the
B x S x V logits (`--loss full`), in the estimate's phases and on the command line (fast, no torch)."""

import json

import pytest

from estimators import estimate
from estimators import terms as t
from estimators.catalog import resolve_model
from estimators.setup import Setup

LLAMA3 = resolve_model("llama-3.1-8b").spec  # V = 128256, h = 4096
T, V, H = 2048, 128256, 4096


def _names(est, phase):
    return {v.name: v.bytes for v in est.phases[phase]}


def test_default_is_fused_and_full_is_the_hf_loss():
    assert Setup().loss == "fused"
    fused = estimate(LLAMA3, Setup(adaptation="lora"))
    full = estimate(LLAMA3, Setup(adaptation="lora", loss="full"))
    f_fwd, h_fwd = _names(fused, "forward"), _names(full, "forward")
    assert "logits and loss" not in f_fwd and "loss gradients" not in _names(fused, "backward (loss)")
    assert h_fwd["logits and loss"] == T * V * (2 + 4 + 4)  # bf16 logits, fp32 upcast, fp32 log-softmax
    assert _names(full, "backward (loss)")["loss gradients"] == 12 * T * V
    # fused: one [2048 x 32768] bf16 tile instead of the vocabulary-sized tensors
    assert f_fwd["fused head: forward"] == T * H * 2 + T * 32768 * 2 + T * 4 * 9
    assert f_fwd["fused head: saved"] == T * (H * 2 + 16)
    assert _names(fused, "backward (loss)")["fused head: backward"] == T * H * 6 + T * 32768 * 2 + 4 * T
    # everything else is the same physics
    same = {k: v for k, v in h_fwd.items() if k != "logits and loss"}
    assert {k: v for k, v in f_fwd.items() if not k.startswith("fused head")} == same
    assert fused.peak_allocated < full.peak_allocated - 2 * 2**30  # 3+ GB of logits terms gone at 2k tokens


def test_fused_full_fine_tune_prices_the_fp32_head_gradient():
    est = estimate(LLAMA3, Setup(adaptation="full", grad_ckpt=False))
    bwd = _names(est, "backward (loss)")["fused head: backward"]
    assert bwd == T * H * 6 + V * H * 6 + T * 32768 * 2 + 4 * T  # fp32 accumulators and their bf16 casts


def test_kinds_use_the_fused_head_where_trl_does():
    s = Setup(adaptation="lora", train="grpo", seq_len=1024, response_len=256, micro_batch=2)
    grpo = estimate(LLAMA3, s)
    fwd = _names(grpo, "forward")
    # completion tokens scored (2 x 256), the last hidden state over every token (2 x 1024)
    assert fwd["fused head: saved"] == t.fused_head_saved(LLAMA3, s.with_(seq_len=1024), 512)
    assert fwd["fused head: forward"] == t.fused_head_forward(LLAMA3, s.with_(seq_len=1024), 512)
    dpo = estimate(LLAMA3, Setup(adaptation="lora", train="dpo"))
    ref = _names(dpo, "reference forward")
    assert "fused head: saved" in ref and "fused head: forward" not in ref  # the policy's saved tensors stay
    # reward (seq-cls, no LM head) and PPO (trl 1.12, full logits) do not depend on the knob
    for kind in ("reward", "ppo"):
        a = estimate(LLAMA3, Setup(adaptation="lora", train=kind))
        b = estimate(LLAMA3, Setup(adaptation="lora", train=kind, loss="full"))
        assert a.phases == b.phases


def _json(advisor_main, *flags):
    out = advisor_main("estimate", "--model", "llama-3.1-8b", "--method", "lora", "--json", *flags)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_cli_loss_flag_changes_the_logits_terms(advisor_main):
    default, full = _json(advisor_main), _json(advisor_main, "--loss", "full")
    assert default["setup"]["loss"] == "fused" and full["setup"]["loss"] == "full"
    full_terms = {x["name"]: x["bytes"] for x in full["terms"]}
    assert full["peak"]["phase"] == "backward (loss)" and full_terms["loss gradients"] == 12 * T * V
    assert not {"logits and loss", "loss gradients"} & {x["name"] for x in default["terms"]}
    saved = full["peak"]["allocated"]["bytes"] - default["peak"]["allocated"]["bytes"]
    assert saved > 2 * 2**30
    assert _json(advisor_main, "--loss", "fused") == default


def test_cli_rejects_an_unknown_loss(advisor_main):
    out = advisor_main("estimate", "--model", "8b", "--loss", "blocked")
    assert out.returncode == 2
    assert "unknown loss 'blocked'; valid: fused, full, chunked" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("adaptation", ["full", "lora", "qlora"])
def test_fused_head_never_prices_tokens_x_vocabulary(adaptation):
    """The vocabulary enters the fused head only through the (capped) tile width and a trained head's V x h
    weight gradient: doubling a 128k vocabulary adds nothing else, whatever the sequence length."""
    s = Setup(adaptation=adaptation, seq_len=8192)
    big = LLAMA3.with_(vocab_size=2 * V)
    for fn in (t.fused_head_saved, t.fused_head_forward, t.fused_chunk_casts, t.fused_tile):
        assert fn(big, s) == fn(LLAMA3, s), fn.__name__
    grad_weight = V * H * (4 + 2) if adaptation == "full" else 0
    assert t.fused_head_backward(big, s) - t.fused_head_backward(LLAMA3, s) == grad_weight


def test_human_output_names_a_non_default_loss(advisor_main):
    full = advisor_main("estimate", "--model", "8b", "--loss", "full")
    fused = advisor_main("estimate", "--model", "8b")
    assert full.returncode == fused.returncode == 0
    assert "loss=full" in full.stdout and "loss gradients" in full.stdout
    assert "loss=" not in fused.stdout and "loss gradients" not in fused.stdout
