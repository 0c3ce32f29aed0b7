"""LLaMA-Adapter's time terms (estimators/time_adapter_prompt.py, time_layer._layer_passes) checked by hand on
Llama 2 7B: no LoRA branch runs, the adapter's work sits in the adapted layers, and backward stops at the lowest
adapted layer unless gradient checkpointing makes every layer need a gradient."""

from __future__ import annotations

import pytest

from estimators import time_adapter_prompt as tap
from estimators import time_layer as tl
from estimators.catalog import resolve_model
from estimators.roofline import Constants, Roof
from estimators.setup import Setup

M = resolve_model("llama-2-7b").spec  # h = q width 4096, 32 heads, 32 layers
ROOF = Roof(peak_flops=100e12, fp32_flops=10e12, bandwidth=1e12)
C = Constants(
    matmul_efficiency=0.5, matmul_half_tokens=0.0, bandwidth_efficiency=0.5, attention_efficiency=0.5, dispatch_s=10e-6, link_efficiency=0.5
)
ADAPTER = Setup(
    adaptation="lora", stack="hf-trainer", llama_adapter=True, adapter_len=10, adapter_layers=8, micro_batch=2, seq_len=512, grad_ckpt=False
)


def test_adapter_pass_by_hand():
    tokens, h, lp = 1024, 4096, 10
    # q_proj again and o_proj: 2 x 2·T·h·h FLOPs, compute-bound at 100 TFLOP/s x 0.5; the score products 2 x 2·T·lp·h
    linear = 2 * tokens * h * h / 50e12
    scores = max(4.0 * tokens * lp * h / 50e12, (2 * tokens * h + 2 * 2 * lp * h + 2 * 32 * 512 * lp) * 2 / 0.5e12)
    elem = (2 * 32 * 512 * lp * (2 + 4 + 4 + 2 + 2 + 2) + 3 * 2 * tokens * h) / 0.5e12
    mat, e, k = tap.adapter_pass(M, ADAPTER, ROOF, C, 2, 512, False)
    assert mat == pytest.approx(2 * linear + scores)
    assert e == pytest.approx(elem)
    assert k == tap.ADAPTER_KERNELS
    assert tap.adapter_pass(M, ADAPTER, ROOF, C, 2, 512, True) == pytest.approx((mat, 2 * elem, 2 * tap.ADAPTER_KERNELS))


def test_backward_stops_at_the_lowest_adapted_layer_without_checkpointing():
    assert tap.backward_layers(M, ADAPTER) == 8
    assert tap.backward_layers(M, ADAPTER.with_(grad_ckpt=True)) == 32
    assert tap.backward_layers(M, ADAPTER.with_(adapter_layers=40)) == 32  # peft caps it at the model's layers


def test_the_step_prices_a_frozen_base_and_the_adapter_layers():
    terms = tl.train_micro_batch(M, ADAPTER, ROOF, C, 2, 512)
    frozen_f = tl.layer_pass(M, ADAPTER, ROOF, C, 2, 512, False, lora=False)
    frozen_b = tl.layer_pass(M, ADAPTER, ROOF, C, 2, 512, True, lora=False)
    extra_f = tap.adapter_pass(M, ADAPTER, ROOF, C, 2, 512, False)
    extra_b = tap.adapter_pass(M, ADAPTER, ROOF, C, 2, 512, True)
    assert terms["forward: matmuls"][0] == pytest.approx(32 * frozen_f.matmul + 8 * extra_f[0])
    assert terms["backward: matmuls"][0] == pytest.approx(8 * frozen_b.matmul + 8 * extra_b[0])
    assert terms["backward: elementwise"][0] == pytest.approx(8 * frozen_b.elementwise + 8 * extra_b[1])
    # no LoRA matmuls: LoRA's own forward is dearer than the frozen layer's
    lora = tl.layer_pass(M, ADAPTER.with_(llama_adapter=False), ROOF, C, 2, 512, False)
    assert lora.matmul > frozen_f.matmul
    ckpt = tl.train_micro_batch(M, ADAPTER.with_(grad_ckpt=True), ROOF, C, 2, 512)
    assert ckpt["backward: matmuls"][0] == pytest.approx(32 * frozen_b.matmul + 8 * extra_b[0])
    assert ckpt["checkpoint recompute: matmuls"][0] == pytest.approx(terms["forward: matmuls"][0])
