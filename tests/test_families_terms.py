"""Issue 15 §1: the activation terms of the new block shapes, hand-checked on models small enough to count by hand,
plus one check against the fake-tensor tracer (slow) per new shape.

NEOX: GPT-NeoX-style, h=8, i=32, 2 heads of 4 (q width 8, kv width 8), LayerNorm with bias, fused query_key_value,
parallel residual with two norms, gelu. Batch 1 x 4 tokens. Bytes below are per token unless a test says otherwise.
"""

from __future__ import annotations

import json

import pytest

from estimators import terms as t
from estimators.effective import for_model
from estimators.families import FAMILIES, flag_defaults
from estimators.model import ModelSpec
from estimators.params import count_params
from estimators.setup import Setup

NEOX = ModelSpec(
    name="neox",
    model_type="gpt_neox",
    hidden_size=8,
    intermediate_size=32,
    num_layers=2,
    num_heads=2,
    num_kv_heads=2,
    vocab_size=32,
    **{**flag_defaults(FAMILIES["gpt_neox"]), **FAMILIES["gpt_neox"].switches},
)
PHI = ModelSpec(
    name="phi",
    model_type="phi",
    hidden_size=8,
    intermediate_size=32,
    num_layers=2,
    num_heads=2,
    num_kv_heads=2,
    vocab_size=32,
    **{**flag_defaults(FAMILIES["phi"]), **FAMILIES["phi"].switches},
)
FALCON7 = ModelSpec(
    name="falcon7",
    model_type="falcon",
    hidden_size=8,
    intermediate_size=32,
    num_layers=2,
    num_heads=2,
    num_kv_heads=1,
    vocab_size=32,
    norms_per_layer=1,
    parallel_block=True,
    **{**flag_defaults(FAMILIES["falcon"]), **FAMILIES["falcon"].switches},
)
FALCON40 = FALCON7.with_(num_heads=4, num_kv_heads=2, hidden_size=16, norms_per_layer=2)
COHERE = ModelSpec(
    name="cohere",
    model_type="cohere",
    hidden_size=8,
    intermediate_size=16,
    num_layers=2,
    num_heads=2,
    num_kv_heads=2,
    vocab_size=32,
    **FAMILIES["cohere"].switches,
)
OLMO = ModelSpec(
    name="olmo", model_type="olmo", hidden_size=8, intermediate_size=16, num_layers=2, num_heads=2, num_kv_heads=2, vocab_size=32, norm="none"
)
FULL = Setup(adaptation="full", micro_batch=1, seq_len=4, loss="full")  # bf16 under autocast
LORA = Setup(adaptation="lora", lora_r=2, micro_batch=1, seq_len=4, loss="full")
QLORA = Setup(adaptation="qlora", lora_r=2, micro_batch=1, seq_len=4, loss="full")  # fp32 residual after the upcast


def test_neox_and_falcon_traits_are_what_the_terms_read():
    assert NEOX.fused_qkv and NEOX.parallel_block and NEOX.norms_per_layer == 2 and NEOX.mlp_act == "gelu"
    assert PHI.norms_per_layer == 1 and PHI.mlp_act == "gelu_new" and PHI.lm_head_bias


def test_shared_norm_of_a_parallel_block():
    """Phi / Falcon 7B / Cohere: one norm feeds q, k, v and fc1 (4 consumers; 2 with fused qkv). LayerNorm runs in
    fp32 under autocast: its fp32 input copy (4h), and for full fine-tuning one bf16 cast per consumer."""
    assert t.layer_norms_saved(PHI, LORA) == 4 * 8
    assert t.layer_norms_saved(PHI, FULL) == (4 + 4 * 2) * 8  # q, k, v, fc1 each cast the fp32 output
    assert t.layer_norms_saved(FALCON7, FULL) == (4 + 2 * 2) * 8  # fused query_key_value + dense_h_to_4h


def test_parallel_residual_norms_share_an_fp32_input():
    """GPT-NeoX: both norms read the layer input. In bf16 each makes its own fp32 copy (2 x 4h); when the residual
    is already fp32 (QLoRA after the k-bit upcast) both keep that one tensor (4h)."""
    assert t.layer_norms_saved(NEOX, LORA) == (4 + 4) * 8
    assert t.layer_norms_saved(NEOX, QLORA) == 4 * 8
    sequential = NEOX.with_(parallel_block=False)
    assert t.layer_norms_saved(sequential, QLORA) == (4 + 4) * 8  # the second norm reads x + attention: another tensor


def test_fused_qkv_view_keeps_the_whole_projection():
    """GPT-NeoX: v is a view of query_key_value's output, so the saved v keeps all q + 2 kv of it: flash saves
    q and k after rotary (2 x 8), the fused output (24) and the attention output (8), bf16, plus fp32 lse per head."""
    assert t.fused_qkv_view(NEOX, FULL)
    assert t.attention_saved(NEOX, FULL) == 2 * (8 + 8 + 24 + 8) + 4 * 2
    # QLoRA: the fp32 projection is cast to bf16 for the kernel (new tensors): no view kept
    assert not t.fused_qkv_view(NEOX, QLORA)
    assert t.attention_saved(NEOX, QLORA) == 2 * (2 * 8 + 2 * 8) + 4 * 2


def test_falcon_attention_layouts():
    """7B (multi-query): k/v are indexed copies of one head; under SDPA (no enable_gqa) the math path runs, priced
    as eager; flash-attn takes multi-query directly. 40B (new decoder architecture): k and v are broadcast to every
    query head, so they are saved as wide as q."""
    assert not t.fused_qkv_view(FALCON7, FULL) and not t.falcon_expands_kv(FALCON7)
    assert t.attention_kernel(FALCON7, FULL) == "eager"
    assert t.attention_kernel(FALCON7, FULL.with_(attention="flash")) == "flash"
    assert t.attention_saved(FALCON7, FULL.with_(attention="flash")) == 2 * (2 * 8 + 2 * 4) + 4 * 2
    assert t.falcon_expands_kv(FALCON40) and t.attention_kernel(FALCON40, FULL) == "flash"
    assert t.attention_saved(FALCON40, FULL) == 2 * (4 * 16) + 4 * 4  # q, k, v (all 16 wide) and the output


def test_one_op_and_fast_gelu_mlps():
    """gelu (GPT-NeoX, Falcon, StarCoder 2): one op keeps its bf16 input (i wide), a trained fc_out the output.
    gelu_fast (SantaCoder): seven tensors of the input's dtype (fp32 under QLoRA, whose 4-bit fc_in returns the
    fp32 norm output's dtype)."""
    assert t.mlp_saved(NEOX, LORA) == 2 * 32
    assert t.mlp_saved(NEOX, FULL) == (2 + 2) * 32
    assert t.mlp_saved(NEOX, QLORA) == 4 * 32
    fast = NEOX.with_(mlp_act="gelu_fast")
    assert t.mlp_saved(fast, LORA) == 7 * 2 * 32 and t.mlp_saved(fast, QLORA) == 7 * 4 * 32
    assert t.mlp_saved(fast, FULL) == (7 * 2 + 2) * 32
    assert t.mlp_saved(NEOX.with_(mlp_act="some_new_act"), LORA) == 2 * 32  # unlisted: priced as one op


def test_cohere_norm_keeps_two_centred_copies():
    """CohereLayerNorm computes x - mean twice in fp32 (pow keeps one, the rsqrt product the other); a trained
    weight adds the fp32 normalised tensor; the output is cast back to the residual dtype."""
    assert t.norm_saved(COHERE, LORA, 0) == 8 * 8
    assert t.norm_saved(COHERE, FULL, 0) == 12 * 8
    assert t.norm_out_bytes(COHERE, FULL) == 2


def test_olmo_norm_without_parameters():
    """OLMo 1: F.layer_norm on an fp32 copy, no weight to multiply, cast back to the residual dtype."""
    assert count_params(OLMO).norm == 0
    assert t.norm_out_bytes(OLMO, FULL) == 2
    assert t.norm_saved(OLMO, FULL, 1) == (4 + 2) * 8  # fp32 copy + the bf16 output the next linear keeps


def test_residual_dropout_masks_and_the_head_bias():
    assert t.dropout_saved(NEOX, FULL) == 0
    assert t.dropout_saved(PHI.with_(resid_dropout=True), FULL) == 2 * 8  # one-byte masks after attention and MLP
    # Phi's trained lm_head bias (V) is a gradient once the head's backward ran
    assert t.head_gradients(PHI, FULL) - t.head_gradients(PHI.with_(lm_head_bias=False), FULL) == 32 * 2


# ---------------------------------------------------------------------------------------------- against traces
SMALL = {"hidden_size": 256, "intermediate_size": 1024, "num_attention_heads": 8, "vocab_size": 1000}
SHAPES = {  # one per new block shape
    "gpt_neox": ({"model_type": "gpt_neox", **SMALL}, "sdpa"),
    "falcon-7b-layout": ({"model_type": "falcon", **{k: v for k, v in SMALL.items() if k != "intermediate_size"}}, "flash"),
    "falcon-40b-layout": (
        {"model_type": "falcon", "new_decoder_architecture": True, "num_kv_heads": 2, **{k: v for k, v in SMALL.items() if k != "intermediate_size"}},
        "flash",
    ),
    "cohere": ({"model_type": "cohere", "num_key_value_heads": 2, **SMALL}, "sdpa"),
    "santacoder-gelu_fast": (
        {
            "model_type": "gpt_bigcode",
            "n_embd": 256,
            "n_layer": 2,
            "n_head": 8,
            "n_inner": 1024,
            "vocab_size": 1000,
            "activation_function": "gelu_fast",
        },
        "sdpa",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("adaptation", ["full", "lora", "qlora"])
def test_per_layer_forward_equals_the_trace(tmp_path, shape, adaptation):
    """What one more decoder layer adds to the forward peak, traced (fake tensors, CUDA semantics) and estimated:
    2 vs 4 layers, batch 2 x 512, no checkpointing. Within 1.5 % (the LoRA/QLoRA rows of the older families
    show the same ~1 % offset)."""
    pytest.importorskip("torch")
    from advisor.measure.trace import trace
    from estimators.config_json import read_config_json
    from estimators.pricing import estimate

    config, attention = SHAPES[shape]
    key = "n_layer" if "n_layer" in config else "num_hidden_layers"
    peaks = {}
    for layers in (2, 4):
        path = tmp_path / f"l{layers}.json"
        path.write_text(json.dumps({**config, key: layers}))
        spec = read_config_json(path)
        setup = for_model(spec, Setup(adaptation=adaptation, seq_len=512, micro_batch=2, grad_ckpt=False, attention=attention))
        peaks[layers] = (trace(spec, setup).phase_peaks["forward"], sum(v.bytes for v in estimate(spec, setup).phases["forward"]))
    traced = (peaks[4][0] - peaks[2][0]) / 2
    estimated = (peaks[4][1] - peaks[2][1]) / 2
    assert abs(estimated - traced) / traced < 0.015
