"""Parallel layouts: hand-checked sharding, gathered working sets and buffers, ZeRO stages and GPU counts never
making per-GPU memory worse, offload moving bytes to the host, and one-line errors for impossible layouts."""

import json

import pytest

from estimators import Setup, estimate
from estimators import parallel_units as par
from estimators import terms as t
from estimators.catalog import catalog
from estimators.model import ModelSpec

TINY = ModelSpec(name="tiny", model_type="llama", hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4, num_kv_heads=2, vocab_size=1000)
TINY_LAYER = 64 * (64 + 32 + 32 + 64) + 3 * 64 * 128 + 2 * 64  # 36,992 parameters per decoder layer
LLAMA8 = catalog()["llama-3.1-8b"]
P8 = 8_030_261_248
FULL = Setup(adaptation="full")  # pure bf16, AdamW: 2 bytes weights and gradients, 4 bytes of states per parameter


def term(est, name, phase=None):
    phase = phase or est.peak_phase
    return next(v for v in est.phases[phase] if v.name == name)


def category_peaks(est) -> dict:
    out = {}
    for vals in est.phases.values():
        for c in ("parameters", "gradients", "optimizer"):
            out[c] = max(out.get(c, 0), sum(v.bytes for v in vals if v.category == c))
    return out


# ---------------------------------------------------------------------------------------------- hand-checked
def test_unit_sizes_by_hand():
    assert par.root_weight_bytes(TINY, FULL) == (2 * 1000 * 64 + 64) * 2  # embedding, head, final norm
    assert par.layer_weight_bytes(TINY, FULL) == TINY_LAYER * 2
    assert par.table_weight_bytes(TINY, FULL) == 1000 * 64 * 2
    assert par.zero_reduce_buckets(TINY, FULL) == 2 * 64 * 64 * 2


def test_zero3_working_set_by_hand():
    # largest module (the 1000 x 64 table beats a 36,992-parameter layer) + prefetch 0.9 h^2 bf16 + norms kept whole
    persistent = (2 * 2 * 64 + 64) * 2
    expected = 1000 * 64 * 2 + int(0.9 * 64 * 64) * 2 + persistent - persistent // 2
    assert par.zero3_working_set(TINY, FULL, 2) == expected == 128_000 + 7_372 + 320


def test_fsdp_working_set_by_hand():
    root = (2 * 1000 * 64 + 64) * 2
    assert par.fsdp_working_set(TINY, FULL, 1) == root + TINY_LAYER * 2
    assert par.fsdp_working_set(TINY, FULL, 2) == root + 2 * TINY_LAYER * 2


def test_ddp_keeps_everything_and_adds_buckets_the_size_of_the_gradients():
    single = estimate(LLAMA8, FULL)
    ddp = estimate(LLAMA8, FULL.with_(gpus=4, parallel="ddp"))
    for name in ("base weights", "optimizer states"):
        assert term(ddp, name, "optimizer step").bytes == term(single, name, "optimizer step").bytes
    assert all(any(v.name == "DDP gradient buckets" for v in vals) for vals in ddp.phases.values())
    assert term(ddp, "DDP gradient buckets", "forward").bytes == t.gradients(LLAMA8, FULL) == P8 * 2


def test_zero_stages_shard_what_they_promise_by_hand():
    z1, z2, z3 = (estimate(LLAMA8, FULL.with_(gpus=4, parallel=p)) for p in ("zero1", "zero2", "zero3"))
    step = "optimizer step"
    assert term(z1, "optimizer states", step).bytes == P8 * 4 // 4
    assert term(z1, "gradients", step).bytes == P8 * 2  # ZeRO-1 keeps every gradient
    assert term(z1, "fp32 master weights (ZeRO)", step).bytes == P8 * 4 // 4
    assert term(z2, "gradients", step).bytes == P8 * 2 // 4
    assert term(z2, "base weights", step).bytes == P8 * 2  # ZeRO-2 keeps every weight
    assert term(z3, "base weights", step).bytes == P8 * 2 // 4
    assert term(z3, "gathered parameters (ZeRO-3)", "forward").bytes == par.zero3_working_set(LLAMA8, FULL, 4)
    assert term(z2, "ZeRO reduce buckets", "backward (layers)").bytes == 2 * 4096 * 4096 * 2


def test_fsdp_full_shard_by_hand():
    est = estimate(LLAMA8, FULL.with_(gpus=2, parallel="fsdp"))
    assert term(est, "base weights", "optimizer step").bytes == P8
    assert term(est, "optimizer states", "optimizer step").bytes == P8 * 2
    assert term(est, "gathered parameters (FSDP)", "forward").bytes == par.fsdp_working_set(LLAMA8, FULL, 1)
    assert term(est, "gathered parameters (FSDP)", "backward (layers)").bytes == par.fsdp_working_set(LLAMA8, FULL, 2)
    assert not any(v.name.startswith("gathered") for v in est.phases["optimizer step"])


def test_shard_grad_op_keeps_the_weights_gathered_through_backward():
    grad_op = estimate(LLAMA8, FULL.with_(gpus=2, parallel="fsdp_grad_op"))
    assert term(grad_op, "gathered parameters (FSDP)", "forward").bytes == P8 * 2
    full = estimate(LLAMA8, FULL.with_(gpus=2, parallel="fsdp"))
    assert grad_op.peak_allocated > full.peak_allocated


def test_qlora_under_fsdp_is_priced_without_the_fp32_upcast():
    s = Setup(adaptation="qlora", gpus=2, parallel="fsdp")
    est = estimate(LLAMA8, s)
    assert est.peak_allocated == estimate(LLAMA8, s.with_(kbit_upcast=False)).peak_allocated
    assert any("without peft's fp32 upcast" in w for w in est.warnings)
    assert estimate(LLAMA8, s.with_(parallel="zero3")).peak_allocated != estimate(LLAMA8, s.with_(parallel="zero3", kbit_upcast=False)).peak_allocated


def test_hybrid_shards_within_a_node():
    hybrid = estimate(LLAMA8, FULL.with_(gpus=4, nodes=2, parallel="fsdp_hybrid"))
    full4 = estimate(LLAMA8, FULL.with_(gpus=4, parallel="fsdp"))
    assert hybrid.peak_allocated == full4.peak_allocated
    assert term(hybrid, "base weights", "optimizer step").bytes == P8 * 2 // 4


# ---------------------------------------------------------------------------------------------- properties
SHARDED = ("zero1", "zero2", "zero3", "fsdp", "fsdp_grad_op", "fsdp_hybrid")
CASES = [
    (model, Setup(train=kind, adaptation=adaptation, kbit_upcast=False))
    for model in ("llama-3.1-8b", "qwen3-30b-a3b", "gpt2", "gemma-3-270m")
    for kind in ("sft", "dpo", "grpo", "ppo", "reward")
    for adaptation in ("full", "lora", "qlora")
]


@pytest.mark.parametrize("model, setup", CASES)
def test_zero_stages_never_add_states_gradients_or_weights(model, setup):
    per_stage = [category_peaks(estimate(catalog()[model], setup.with_(gpus=4, parallel=p))) for p in ("zero1", "zero2", "zero3")]
    for category in ("parameters", "gradients", "optimizer"):
        a, b, c = (s[category] for s in per_stage)
        assert a >= b >= c, (category, a, b, c)


def test_zero_stages_lower_the_peak_of_a_large_model():
    peaks = [estimate(LLAMA8, FULL.with_(gpus=8, parallel=p)).peak_allocated for p in ("zero1", "zero2", "zero3")]
    assert peaks[0] > peaks[1] > peaks[2]


@pytest.mark.parametrize("model, setup", CASES)
def test_more_gpus_never_increase_per_gpu_memory(model, setup):
    spec = catalog()[model]
    for p in SHARDED:
        peaks = [estimate(spec, setup.with_(gpus=g, parallel=p)).peak_allocated for g in (2, 4, 8, 16)]
        assert peaks == sorted(peaks, reverse=True), (p, peaks)
    nodes = [estimate(spec, setup.with_(gpus=2, nodes=n, parallel="zero3")).peak_allocated for n in (1, 2, 4)]
    assert nodes == sorted(nodes, reverse=True)


# ---------------------------------------------------------------------------------------------- offload
def test_zero_offload_moves_the_optimizer_to_host_by_hand():
    base = FULL.with_(gpus=2, parallel="zero2")
    on_gpu = estimate(LLAMA8, base)
    off = estimate(LLAMA8, base.with_(offload_optimizer=True))
    assert off.peak_allocated < on_gpu.peak_allocated
    assert category_peaks(off)["optimizer"] == 0
    # per GPU: AdamW states 4 B + fp32 masters 4 B + fp32 gradients 4 B per parameter over 2 ranks; a node has 2 GPUs
    assert off.host_offload_bytes == 2 * (P8 * 12 // 2)
    assert on_gpu.host_offload_bytes == 0


def test_zero_offload_on_one_gpu_is_allowed():
    est = estimate(LLAMA8, FULL.with_(parallel="zero2", offload_optimizer=True))
    assert est.host_offload_bytes == P8 * 12 and est.peak_allocated < estimate(LLAMA8, FULL).peak_allocated


def test_param_offload_moves_weights_to_host():
    z3 = FULL.with_(gpus=2, parallel="zero3")
    off = estimate(LLAMA8, z3.with_(offload_params=True, offload_optimizer=True))
    assert term(off, "base weights", "optimizer step").bytes == 0
    assert off.host_offload_bytes > estimate(LLAMA8, z3.with_(offload_optimizer=True)).host_offload_bytes
    fsdp = estimate(LLAMA8, FULL.with_(gpus=2, parallel="fsdp", offload_params=True))
    assert category_peaks(fsdp) == {"parameters": 0, "gradients": 0, "optimizer": 0}
    assert fsdp.host_offload_bytes == 2 * (P8 * 2 // 2 + P8 * 2 // 2 + P8 * 4 // 2)  # weights, gradients, states


def test_json_reports_per_gpu_scope_and_host_ram(advisor_main):
    out = advisor_main("estimate", "--model", "8b", "--method", "full", "--gpus", "2", "--parallel", "zero3", "--offload-optimizer", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["memory_scope"] == "per GPU (rank 0)"
    assert data["host_offload"]["bytes"] == estimate(LLAMA8, FULL.with_(gpus=2, parallel="zero3", offload_optimizer=True)).host_offload_bytes > 0
    assert sum(t["bytes"] for t in data["terms"]) == data["peak"]["allocated"]["bytes"]
    human = advisor_main("estimate", "--model", "8b", "--method", "full", "--gpus", "2", "--parallel", "zero3", "--offload-optimizer")
    assert "host RAM" in human.stdout and "per GPU" in human.stdout


# ---------------------------------------------------------------------------------------------- fit
def test_fit_offload_and_two_gpu_suggestions_are_real():
    from estimators.fit import suggest_fixes
    from estimators.gpus import find_gpu

    a100 = find_gpu("a100-80gb").memory_bytes
    setup = Setup(adaptation="full")
    fixes = suggest_fixes(catalog()["llama-2-13b"], setup, a100, limit=10)
    keys = {f.key for f in fixes}
    # fits is judged on the band's upper end (issue 15 §3): two GPUs alone are 64.8 GiB at the point figure but
    # 80.4 at the top of the full fine-tuning band, so the second GPU comes with one more change
    assert "offload_optimizer" in keys and any("more_gpus" in k for k in keys)
    for fix in fixes:
        fresh = estimate(catalog()["llama-2-13b"], setup.with_(**fix.changes))
        assert fresh.fits(a100) and fresh.device_bytes == fix.device_bytes
    offload = next(f for f in fixes if f.key == "offload_optimizer")
    assert offload.estimate.host_offload_bytes > 0
    qlora = suggest_fixes(LLAMA8, Setup(adaptation="qlora", seq_len=65536), find_gpu("rtx4090").memory_bytes, limit=10)
    assert all(estimate(LLAMA8, Setup(adaptation="qlora", seq_len=65536).with_(**f.changes)).fits(find_gpu("rtx4090").memory_bytes) for f in qlora)


# ---------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "args, needle",
    [
        (["--parallel", "zero9"], "valid: none, ddp, zero1, zero2, zero3, fsdp, fsdp_grad_op, fsdp_hybrid"),
        (["--parallel", "fsdp"], "--parallel fsdp needs more than one GPU"),
        (["--parallel", "ddp"], "--parallel ddp needs more than one GPU"),
        (["--gpus", "2"], "2 GPUs need a data-parallel layout"),
        (["--nodes", "2", "--gpus", "4"], "8 GPUs need a data-parallel layout"),
        (["--gpus", "2", "--parallel", "zero2", "--offload-params"], "--offload-params needs a layout that shards the weights"),
        (["--gpus", "2", "--parallel", "ddp", "--offload-optimizer"], "--offload-optimizer needs DeepSpeed ZeRO"),
        (["--offload-optimizer"], "--offload-optimizer needs DeepSpeed ZeRO"),
        (["--gpus", "2", "--parallel", "fsdp", "--offload-optimizer"], "add --offload-params"),
        (["--gpus", "2", "--parallel", "zero2", "--offload-optimizer", "--optimizer", "adamw8bit"], "cannot be offloaded"),
        (["--gpus", "0"], "--gpus must be a positive"),
    ],
)
def test_bad_layouts_are_one_line_exit_2(advisor_main, args, needle):
    out = advisor_main("estimate", "--model", "7b", *args)
    assert out.returncode == 2, out.stdout
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], out.stderr
