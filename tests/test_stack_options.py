"""Options without a knob before issue 15 (estimators/option_terms.py): DoRA, modules_to_save, activation offloading,
the optimizer step in backward. Each term by hand (Llama 2 7B: h 4096, i 11008, V 32000, 32 layers; LoRA r16
all-linear), then against the `advisor measure` traces of the same set-ups (estimators/calibration/traces.jsonl)."""

import json
import re
from pathlib import Path

import pytest

from estimators import estimate
from estimators.catalog import resolve_model
from estimators.errors import EstimateError
from estimators.option_terms import (
    dora_forward_transient,
    dora_magnitude_params,
    dora_saved_per_token,
    dora_weight_copies,
    saved_module_params,
)
from estimators.setup import Setup

L7 = resolve_model("7b").spec
T = 2048
OUTS = 4 * 4096 + 2 * 11008 + 4096  # q, k, v, o, down: 4096 out; gate, up: 11008


def term(est, phase, name):
    hits = [v for v in est.phases[phase] if v.name == name]
    assert len(hits) == 1, (phase, name)
    return hits[0]


# ------------------------------------------------------------------------------------------------ DoRA by hand
def test_dora_magnitudes_one_per_output_feature():
    assert dora_magnitude_params(L7, Setup(dora=True)) == 32 * OUTS == 1_359_872
    base = estimate(L7, Setup())
    dora = estimate(L7, Setup(dora=True))
    step = "optimizer step"
    assert term(dora, step, "LoRA adapters").bytes - term(base, step, "LoRA adapters").bytes == 4 * 1_359_872
    assert term(dora, step, "optimizer states").bytes - term(base, step, "optimizer states").bytes == 8 * 1_359_872


def test_dora_saved_outputs_and_weight_copies():
    assert dora_saved_per_token(L7, Setup(dora=True)) == 2 * 2 * OUTS == 169_984  # base and LoRA outputs, bf16
    attn, mlp = 4 * 4096 * 4096, 3 * 4096 * 11008
    assert dora_weight_copies(L7, Setup(dora=True)) == 2 * (attn + mlp) == 404_750_336  # dropout 0.05: bf16 weight copies
    assert dora_weight_copies(L7, Setup(dora=True, lora_dropout=0.0)) == 0


def test_dora_working_set_at_down_proj():
    w = 11008 * 4096
    eye = 2 * 11008 * 11008  # autocast's bf16 copy of torch.eye(in), kept by lora_A
    no_dropout = 16 * w + eye  # fp32: weight copy, lora_weight, scaling * lora_weight, weight + that
    assert dora_forward_transient(L7, Setup(dora=True, lora_dropout=0.0)) == no_dropout == 963_772_416
    earlier = 2 * (4 * 4096 * 4096 + 2 * 4096 * 11008)  # q, k, v, o, gate, up weight copies already kept
    assert dora_forward_transient(L7, Setup(dora=True)) == no_dropout + earlier == 1_278_345_216


# ------------------------------------------------------------------------------------------------ modules_to_save by hand
def test_modules_to_save_train_full_copies():
    table = 32000 * 4096
    assert saved_module_params(L7, Setup(modules_to_save="embed_tokens,lm_head")) == {"embed_tokens": table, "lm_head": table}
    base, both = estimate(L7, Setup()), estimate(L7, Setup(modules_to_save="embed_tokens,lm_head"))
    step = "optimizer step"
    assert term(both, step, "modules_to_save copies").bytes == 2 * table * 2  # bf16 copies
    assert term(both, step, "gradients").bytes - term(base, step, "gradients").bytes == 2 * table * 2
    assert term(both, step, "optimizer states").bytes - term(base, step, "optimizer states").bytes == 2 * 2 * table * 2


# ------------------------------------------------------------------------------------------------ offloading, optimizer in backward
def test_activation_offloading_keeps_two_layers_on_the_gpu():
    base, off = estimate(L7, Setup(stack="torchtune")), estimate(L7, Setup(stack="torchtune", act_offload=True))
    ckpt = 2 * 4096 * T
    drop = term(base, "forward", "saved activations").bytes - term(off, "forward", "saved activations").bytes
    assert drop == 30 * ckpt == 503_316_480
    assert off.host_offload_bytes - base.host_offload_bytes == 30 * ckpt


def test_optimizer_in_backward_frees_every_gradient_but_one():
    setup = Setup(stack="torchtune", adaptation="full", optim_in_bwd=True)
    est = estimate(L7, setup)
    grads = [v.bytes for phase in est.phases.values() for v in phase if v.name == "gradients"]
    assert grads and set(grads) == {32000 * 4096 * 2}  # the largest parameter (a vocabulary table), bf16
    plain = estimate(L7, Setup(stack="torchtune", adaptation="full"))
    step = "optimizer step"
    saved = sum(v.bytes for v in plain.phases[step]) - sum(v.bytes for v in est.phases[step])
    assert saved == 2 * 6_738_415_616 - 32000 * 4096 * 2  # 13.5 GB of bf16 gradients never coexist


# ------------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"dora": True, "adaptation": "full"}, "LoRA/QLoRA options"),
        ({"dora": True, "stack": "litgpt"}, "--dora is not an option of --stack litgpt"),
        ({"modules_to_save": "wte"}, "unknown --modules-to-save 'wte'; valid: embed_tokens, lm_head"),
        ({"optim_in_bwd": True}, "--optim-in-bwd is not an option of --stack trl; stacks that have it: torchtune"),
        ({"optim_in_bwd": True, "stack": "torchtune", "grad_accum": 4}, "cannot accumulate gradients"),
        ({"act_offload": True, "stack": "hf-trainer"}, "--act-offload is not an option of --stack hf-trainer"),
    ],
)
def test_option_errors_name_the_fix(kwargs, needle):
    with pytest.raises(EstimateError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        Setup(**kwargs)


def test_generate_offers_no_priced_only_knob(advisor_main):
    out = advisor_main("generate", "--help")
    assert out.returncode == 0
    offered = set(re.findall(r"^  (--[a-z-]+)", out.stdout, flags=re.M))  # option lines, not wrapped help text
    assert "--lora-r" in offered
    assert not offered & {"--stack", "--versions", "--optim-in-bwd"}  # priced only: generated scripts run TRL
    assert {"--dora", "--modules-to-save", "--act-offload", "--galore"} <= offered  # what the scripts run (test_scriptgen_options.py)


def test_estimate_cli_prices_dora(advisor_main):
    out = advisor_main("estimate", "--model", "7b", "--dora", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["setup"]["dora"] is True and "dora" in [b["id"] for b in data["stack"]["behaviours"]]


# ------------------------------------------------------------------------------------------------ against traces
def _option_traces():
    path = Path(__file__).resolve().parent.parent / "estimators" / "calibration" / "traces.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["setup"].get("dora") or r["setup"].get("modules_to_save")]


@pytest.mark.parametrize("row", _option_traces(), ids=lambda r: r["id"])
def test_option_estimates_match_their_traces(row):
    est = estimate(resolve_model(row["model"]).spec, Setup.from_dict(row["setup"]))
    assert est.peak_allocated == pytest.approx(row["peak"]["allocated"], rel=0.01)


def test_there_are_option_traces():
    setups = [r["setup"] for r in _option_traces()]
    assert sum(1 for s in setups if s.get("dora")) >= 3 and sum(1 for s in setups if s.get("modules_to_save")) >= 1


# ------------------------------------------------------------------------------------------------ GaLore by hand
def test_galore_states_by_hand():
    from estimators.galore_terms import galore_states, galore_step_scratch

    setup = Setup(adaptation="full", galore=True)
    r = 128
    attn = 4 * 32 * (2 * r * 4096 + r * 4096)  # q, k, v, o: 4096 x 4096
    gate_up = 2 * 32 * (2 * r * 11008 + r * 4096)  # 11008 x 4096: states m x r, projector r x n
    down = 32 * (2 * r * 11008 + 4096 * r)  # 4096 x 11008: states r x n, projector m x r
    head = 2 * r * 32000 + r * 4096
    rest = 32000 * 4096 + 266_240  # embeddings and norms: plain AdamW
    assert galore_states(L7, setup) == 2 * (attn + gate_up + down + head + 2 * rest) == 1_587_167_232
    # the SVD of the LM head's gradient: fp32 copy, U (32000 x 4096), Vh (4096 x 4096)
    assert galore_step_scratch(L7, setup) == 4 * 32000 * 4096 + 4 * (32000 * 4096 + 4096 * 4096)
    est = estimate(L7, setup)
    assert term(est, "optimizer step", "optimizer states").bytes == 1_587_167_232
    with pytest.raises(EstimateError, match="--galore is GaLore AdamW for full fine-tuning"):
        Setup(galore=True)
