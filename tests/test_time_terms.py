"""Each time term of estimators/timing.py checked by hand on round numbers (FLOP counts are checked against
torch's FlopCounterMode in tests/test_time_flops.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from estimators import flops as fl
from estimators import time_bytes as tb
from estimators import time_layer as tl
from estimators import time_step_terms as ts
from estimators import timing as tm
from estimators.catalog import resolve_model
from estimators.dtypes import four_bit_bytes_per_param
from estimators.errors import EstimateError
from estimators.gpus import find_gpu, gpus
from estimators.params import count_params
from estimators.roofline import DEFAULT, Constants, Roof, matmul_time
from estimators.setup import Setup

A100 = find_gpu("a100-80gb")
M7 = resolve_model("mistral-7b-v0.1").spec
ROOF = Roof(peak_flops=100e12, fp32_flops=10e12, bandwidth=1e12)
C = Constants(
    matmul_efficiency=0.5, matmul_half_tokens=0.0, bandwidth_efficiency=0.5, attention_efficiency=0.5, dispatch_s=10e-6, link_efficiency=0.5
)


def _terms(st) -> dict[str, float]:
    return {x.name: x.seconds for x in st.terms}


def test_matmul_roofline_switches_between_compute_and_memory():
    # 1e12 FLOPs at 100 TFLOP/s x 0.5 = 20 ms; 1 GB at 1 TB/s x 0.5 = 2 ms: compute-bound.
    assert matmul_time(ROOF, C, 1e12, 4096, 1e9) == pytest.approx(0.020)
    # the same FLOPs with 100 GB of operands: 200 ms, memory-bound.
    assert matmul_time(ROOF, C, 1e12, 4096, 1e11) == pytest.approx(0.200)
    # fewer tokens per matmul reach less of the peak: M / (M + M_half)
    half = replace(C, matmul_half_tokens=128.0)
    assert matmul_time(ROOF, half, 1e12, 128, 1e9) == pytest.approx(0.040)


def test_optimizer_step_is_bandwidth_bound_adamw_bytes():
    s = Setup(adaptation="full", precision="bf16")
    n = count_params(M7).total
    # foreach AdamW: 20 passes of a 2-byte parameter, clipping 3 more: 46 bytes per parameter
    assert ts.optimizer_time(M7, s, ROOF, C) == pytest.approx(n * 46 / 0.5e12)
    assert ts.optimizer_time(M7, s.with_(optimizer="adamw8bit"), ROOF, C) == pytest.approx(n * (3 * 2 + 4 + 3 * 2) / 0.5e12)
    # ZeRO/FSDP step only their shard
    sharded = s.with_(gpus=4, parallel="fsdp")
    assert ts.optimizer_time(M7, sharded, ROOF, C) == pytest.approx(ts.optimizer_time(M7, s, ROOF, C) / 4)


def test_communication_bytes_per_layout():
    full = Setup(adaptation="full", precision="bf16", gpus=4)
    n = count_params(M7).total
    grads = 2 * n
    assert ts.comm_bytes(M7, full.with_(parallel="none", gpus=1)) == {}
    assert ts.comm_bytes(M7, full.with_(parallel="ddp")) == {"gradient all-reduce": pytest.approx(2 * grads * 3 / 4)}
    fsdp = ts.comm_bytes(M7, full.with_(parallel="fsdp", grad_accum=2))
    # weights gathered in forward and again in backward, every micro-batch; gradients reduce-scattered
    assert fsdp["weight all-gather"] == pytest.approx(2 * 2 * (2 * n) * 3 / 4)
    assert fsdp["gradient reduce-scatter"] == pytest.approx(2 * grads * 3 / 4)
    # LoRA + FSDP still gathers the frozen base weights, and its flat gradients cover them too (use_orig_params)
    lora = ts.comm_bytes(M7, full.with_(adaptation="lora", parallel="fsdp"))
    assert lora["weight all-gather"] == pytest.approx(2 * lora["gradient reduce-scatter"])
    # under DDP only the adapters' gradients are all-reduced
    ddp = ts.comm_bytes(M7, full.with_(adaptation="lora", parallel="ddp"))
    assert ddp["gradient all-reduce"] < lora["gradient reduce-scatter"] / 20


def test_multi_node_runs_at_the_network_bandwidth():
    s = Setup(adaptation="full", gpus=8, nodes=2, parallel="ddp")
    bw, link = ts.link_bytes_per_s(A100, s, "gradient all-reduce")
    assert link == "network" and bw == 25e9
    bw, link = ts.link_bytes_per_s(A100, s.with_(nodes=1), "gradient all-reduce")
    assert link == "nvlink" and bw == 300e9


def test_frozen_weights_skip_the_weight_gradient_matmuls():
    full = tl.layer_pass(M7, Setup(adaptation="full", micro_batch=4, seq_len=4096), ROOF, C, 4, 4096, backward=True)
    lora = tl.layer_pass(M7, Setup(adaptation="lora", lora_targets="qv", micro_batch=4, seq_len=4096), ROOF, C, 4, 4096, backward=True)
    fwd = tl.layer_pass(M7, Setup(adaptation="full", micro_batch=4, seq_len=4096), ROOF, C, 4, 4096, backward=False)
    assert full.matmul == pytest.approx(2 * fwd.matmul, rel=1e-6)
    assert fwd.matmul < lora.matmul < 1.05 * fwd.matmul  # input gradients + the small adapter matmuls


def test_dequantisation_only_for_qlora_and_per_use():
    s = Setup(adaptation="qlora", micro_batch=1, seq_len=512)
    q = tl._dequant_time(M7, s, ROOF, C)
    assert tl._dequant_time(M7, s.with_(adaptation="lora"), ROOF, C) == 0.0
    params = sum(lin.weight_params for lin in fl.active_linears_routed(M7))
    assert q == pytest.approx(params * (four_bit_bytes_per_param(True) + 2) / 0.5e12)  # packed read, bf16 written
    # per use, not per token: the same at 8x the tokens
    assert tl._dequant_time(M7, s.with_(micro_batch=8), ROOF, C) == q


def test_checkpointing_adds_a_recompute_term():
    s = Setup(adaptation="lora", micro_batch=2, seq_len=2048)
    on = _terms(tm.step_time(M7, s.with_(grad_ckpt=True), A100))
    off = _terms(tm.step_time(M7, s.with_(grad_ckpt=False), A100))
    assert "checkpoint recompute: matmuls" in on and "checkpoint recompute: matmuls" not in off
    assert on["checkpoint recompute: matmuls"] == pytest.approx(on["forward: matmuls"])


def test_small_batches_hit_the_kernel_launch_floor():
    tiny = resolve_model("smollm2-135m").spec
    st = tm.step_time(tiny, Setup(adaptation="lora", micro_batch=1, seq_len=64), find_gpu("h100"))
    assert _terms(st)["host-bound stalls (kernel launches, FSDP hooks)"] > 0.5 * st.seconds
    big = tm.step_time(M7, Setup(adaptation="lora", micro_batch=4, seq_len=4096), find_gpu("h100"))
    assert "host-bound stalls (kernel launches, FSDP hooks)" not in _terms(big)


def test_dpo_reference_forward_and_its_absence():
    s = Setup(train="dpo", adaptation="full", micro_batch=1, seq_len=1024)
    with_ref = _terms(tm.step_time(M7, s, A100))
    ref = with_ref["reference forward"]
    assert ref == pytest.approx(with_ref["forward: matmuls"] + with_ref["forward: attention"] + with_ref["forward: elementwise"], rel=0.15)
    pre = tm.step_time(M7, s.with_(ref_model="precomputed"), A100)
    assert "precomputed" in {x.name: x.note for x in pre.terms}["reference forward"]


def test_grpo_generation_decode_is_bound_by_bandwidth_or_launches():
    """Each decoding step reads every weight (and the cache) once, and launches a whole forward's kernels: the
    slower of the two. A 7B LoRA model under HF generate is launch-bound on an A100; a 70B one bandwidth-bound."""
    s = Setup(train="grpo", adaptation="lora", micro_batch=8, seq_len=768, response_len=512, num_generations=8)
    for key, bound in (("mistral-7b-v0.1", "launch"), ("llama-2-70b", "bandwidth")):
        m = resolve_model(key).spec
        terms = _terms(tm.step_time(m, s, A100))
        decode = terms["generation: decode"]
        weights = 512 * count_params(m).total * 2 / (2039e9 * DEFAULT.bandwidth_efficiency)
        launches = 512 * (m.num_layers * tb.layer_kernels(m, s) + tl.HEAD_KERNELS) * DEFAULT.dispatch_s
        assert decode >= max(weights, launches)
        assert decode < 1.2 * max(weights, launches)  # the KV cache of 768 tokens adds little
        assert (weights > launches) == (bound == "bandwidth")
        assert terms["generation: prefill"] < decode


def test_cpu_offload_crosses_pcie():
    s = Setup(adaptation="full", gpus=2, parallel="zero3", offload_optimizer=True)
    terms = _terms(tm.step_time(M7, s, A100))
    n = count_params(M7).total / 2
    assert terms["optimizer offload: PCIe"] == pytest.approx(n * 4 / (31.5e9 * DEFAULT.bandwidth_efficiency))
    assert terms["optimizer offload: CPU Adam"] == pytest.approx(n / 1e9)


def test_a_card_without_speed_figures_is_refused():
    with pytest.raises(EstimateError, match="no speed figures"):
        tm.step_time(M7, Setup(), find_gpu("24GB"))


def test_cards_without_bf16_are_timed_at_their_fp16_peak():
    st = tm.step_time(M7, Setup(adaptation="qlora"), gpus()["t4"])
    assert tm.roof_for(gpus()["t4"], st.setup).peak_flops == 65e12


def test_elementwise_bytes_follow_each_tensors_dtype():
    """QLoRA on a LayerNorm model under autocast (SantaCoder): the norm's fp32 output makes Linear4bit return fp32,
    so the MLP runs in fp32, every projection casts its input, the 4-bit linears cast their outputs back, and the
    MLP's fp32 output turns the residual stream fp32. Counted by hand per token of one layer's forward."""
    m = resolve_model("santacoder").spec  # h 2048, q 2048, one kv head of 128, c_fc 8192, fused qkv, learned positions
    h, i, qkv = 2048, 8192, 2048 + 2 * 128
    lora = Setup(adaptation="lora", lora_targets="all-linear", lora_dropout=0.0, micro_batch=1, seq_len=512)
    qlora = lora.with_(adaptation="qlora")
    assert tb.Dtypes.of(m, lora) == tb.Dtypes(norm_out=4, proj_out=2, mlp_out=2, stream=2)
    assert tb.Dtypes.of(m, qlora) == tb.Dtypes(norm_out=4, proj_out=4, mlp_out=4, stream=4)
    norms = 2 * h * (4 + 4)  # fp32 stream in, fp32 out (LayerNorm is on autocast's fp32 list)
    residual = 2 * 3 * h * 4
    gelu = 2 * 4 * i  # one op read and written in fp32
    casts = 2 * h * (4 + 2)  # c_attn and c_fc cast the fp32 norm output to bf16
    casts += (qkv + i) * (2 + 4) + h * (2 + 4)  # Linear4bit casts c_attn, c_fc and c_proj outputs back to fp32
    casts += qkv * (4 + 2) + i * (4 + 2)  # fp32 q, k, v into the flash kernel; the fp32 MLP product into c_proj
    assert tb.layer_elementwise_bytes(m, qlora) == norms + residual + gelu + casts
    # LoRA: autocast linears return bf16, so only the casts of the fp32 norm output remain
    lora_bytes = 2 * h * (2 + 4) + 2 * 3 * h * 2 + 2 * 2 * i + 2 * h * (4 + 2)
    assert tb.layer_elementwise_bytes(m, lora) == lora_bytes
    # Mistral's RMSNorm returns bf16 with bf16 weights: QLoRA adds no casts; peft's fp32 norm weights do
    acc = Setup(adaptation="qlora", kbit_upcast=False, micro_batch=1, seq_len=512)
    assert tb.linear_cast_bytes(M7, acc, tb.Dtypes.of(M7, acc)) == 0
    assert tb.Dtypes.of(M7, acc.with_(kbit_upcast=True)).proj_out == 4
    # each cast is a kernel launch: 2 input casts, 2 Linear4bit output groups, q/k/v and the MLP product (LoRA: 2)
    assert len(tb.layer_casts(m, qlora, tb.Dtypes.of(m, qlora))) == 6
    assert len(tb.layer_casts(m, lora, tb.Dtypes.of(m, lora))) == 2
    dequants = sum(1 for lin in fl.active_linears(m) if lin.module)
    assert tb.layer_kernels(m, qlora) - tb.layer_kernels(m, lora) == dequants + 6 - 2


def test_fsdp_units_set_a_host_floor_under_peft():
    """transformers wraps each trainable LoRA A and B as its own FSDP unit (peft fsdp_auto_wrap_policy): PowerLM-3B
    has 40 layers, LoRA on q, k, v, o: 40 layer units, the root, and 40 x 4 x 2 adapter units. Each unit costs
    fsdp_unit_s of host time per pass (forward, recompute, backward), a floor a small micro-batch hits."""
    m = resolve_model("ibm/PowerLM-3b").spec
    lora = Setup(adaptation="lora", lora_targets="q_proj,k_proj,v_proj,o_proj", micro_batch=2, seq_len=4096, gpus=2, parallel="fsdp")
    assert ts.fsdp_units(m, lora) == 40 + 1 + 40 * 4 * 2
    assert ts.fsdp_units(m, lora.with_(adaptation="full")) == 41  # no PEFT: layers and the root only
    assert ts.fsdp_units(m, lora.with_(parallel="ddp")) == 0 and ts.fsdp_units(m, lora.with_(gpus=1, parallel="none")) == 0
    c = replace(C, fsdp_unit_s=10e-3)
    terms = tl.train_micro_batch(m, lora, ROOF, c, 2, 4096)
    gpu = sum(s for name, (s, _) in terms.items() if not name.startswith("host-bound"))
    host = 361 * 3 * 10e-3  # forward, recompute, backward
    assert host > gpu  # the fast roof of this test: bound by the host
    assert terms["host-bound stalls (kernel launches, FSDP hooks)"][0] == pytest.approx(host - gpu, rel=0.02)  # + kernel launches
    # a larger micro-batch gives the GPU more to do than the host: the floor disappears
    big = tl.train_micro_batch(m, lora.with_(micro_batch=32), ROOF, c, 32, 4096)
    assert big["host-bound stalls (kernel launches, FSDP hooks)"][0] == 0.0
