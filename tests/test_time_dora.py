"""DoRA's time terms (estimators/time_dora.py) checked by hand on Mistral 7B with DoRA on q_proj and v_proj."""

from __future__ import annotations

import pytest

from estimators import time_dora as td
from estimators import time_layer as tl
from estimators import timing as tm
from estimators.catalog import resolve_model
from estimators.dtypes import four_bit_bytes_per_param
from estimators.gpus import find_gpu
from estimators.roofline import Constants, Roof
from estimators.setup import Setup

M7 = resolve_model("mistral-7b-v0.1").spec  # h 4096, kv width 1024
A100 = find_gpu("a100-80gb")
ROOF = Roof(peak_flops=100e12, fp32_flops=10e12, bandwidth=1e12)
C = Constants(
    matmul_efficiency=0.5, matmul_half_tokens=0.0, bandwidth_efficiency=0.5, attention_efficiency=0.5, dispatch_s=10e-6, link_efficiency=0.5
)
QV = Setup(adaptation="lora", lora_targets="q_proj,v_proj", dora=True, lora_dropout=0.0, micro_batch=1, seq_len=1024)
Q_W, V_W, EYE = 4096 * 4096, 4096 * 1024, 4096 * 4096  # q and v weights; the in x in identity of each


def test_weight_norm_bytes_under_autocast():
    # bf16 under autocast; x is cast to the adapters' fp32 (4 bytes). Per linear: the fp32 identity written (4e), cast
    # to bf16 (read 4, write 2) and read by lora_A (2): 12e; lora_B's bf16 product written (2w), cast to fp32 (2 + 4),
    # the bf16 weight cast to fp32 (2 + 4), scaling * update (4 + 4), weight + that (4 + 4 + 4), the norm (4): 38w.
    expected = 2 * 12 * EYE + 38 * (Q_W + V_W)
    assert td.weight_norm_bytes(M7, QV) == expected


def test_weight_norm_bytes_of_qlora_under_autocast():
    # QLoRA under autocast keeps x's own dtype, bf16 (2 bytes) when the norms are not upcast to fp32: the product
    # needs no cast, the 4-bit weight is dequantised (the packed weight and its constants read, 2 written) and is
    # bf16 already; scaling * update (2 + 2), the add (2 + 2 + 2), the norm (2).
    s = QV.with_(adaptation="qlora", kbit_upcast=False)
    per_w = 2 + 0 + (four_bit_bytes_per_param(True) + 2) + 0 + 4 + 6 + 2
    assert td.weight_norm_bytes(M7, s) == pytest.approx(2 * 12 * EYE + per_w * (Q_W + V_W))


def test_the_forward_pays_the_norms_and_backward_only_the_combine():
    tokens = QV.micro_batch * QV.seq_len
    combine = tokens * (2 + 6 * 4) * (4096 + 1024)  # the bf16 base output read, six passes in x's fp32
    mat, elem, kernels = td.dora_pass(M7, QV, ROOF, C, tokens, False, 2.0)
    assert (mat, kernels) == (0.0, 2 * td.DORA_KERNELS)
    assert elem == pytest.approx((td.weight_norm_bytes(M7, QV) + combine) / 0.5e12)
    mat, elem, kernels = td.dora_pass(M7, QV, ROOF, C, tokens, True, 2.0)
    assert (mat, kernels) == (0.0, 2 * td.DORA_BACKWARD_KERNELS)
    assert elem == pytest.approx(2.0 * combine / 0.5e12)


def test_dropout_runs_the_base_matmul_again():
    s = QV.with_(lora_dropout=0.05)
    tokens = 1024
    flops = 2.0 * tokens * (Q_W + V_W)
    mat, _, _ = td.dora_pass(M7, s, ROOF, C, tokens, False, 2.0)
    assert mat == pytest.approx(flops / (100e12 * 0.5))  # bf16 under autocast, compute-bound at this size
    assert td.dora_pass(M7, s, ROOF, C, tokens, True, 2.0)[0] == pytest.approx(mat)  # its input gradient


def test_layer_pass_adds_dora_and_nothing_without_it():
    plain = tl.layer_pass(M7, QV.with_(dora=False), ROOF, C, 1, 1024, backward=False)
    dora = tl.layer_pass(M7, QV, ROOF, C, 1, 1024, backward=False)
    _, elem, kernels = td.dora_pass(M7, QV, ROOF, C, 1024, False, 2.0)
    assert dora.elementwise == pytest.approx(plain.elementwise + elem)
    assert dora.kernels == plain.kernels + kernels
    # the adapter-disabled reference forward (DPO's reference model) runs no DoRA
    assert tl.layer_pass(M7, QV, ROOF, C, 1, 1024, backward=False, lora=False) == tl.layer_pass(
        M7, QV.with_(dora=False), ROOF, C, 1, 1024, backward=False, lora=False
    )


def test_kinds_with_a_reference_or_side_models_price_dora_and_modules_to_save():
    # The reference forward runs with the adapter disabled: Setup.without_adapter turns the adapter-only options off
    # (before, `with_(adaptation="full")` refused DoRA and modules_to_save and every DPO/GRPO/PPO estimate failed).
    s = Setup(adaptation="lora", dora=True, modules_to_save="lm_head")
    bare = s.without_adapter(grad_ckpt=False)
    assert (bare.adaptation, bare.dora, bare.modules_to_save, bare.llama_adapter, bare.grad_ckpt) == ("full", False, "", False, False)
    for kind in ("dpo", "grpo", "ppo"):
        for option in ({"dora": True}, {"modules_to_save": "lm_head"}):
            plain = tm.step_time(M7, Setup(adaptation="lora", train=kind), A100).seconds
            assert tm.step_time(M7, Setup(adaptation="lora", train=kind, **option), A100).seconds > plain
