"""`advisor measure`: the tracker, the CUDA emulation pieces, the fake-tensor trace against a real CPU run of the
same step, the JSONL rows and the CUDA mode's bookkeeping (no GPU needed)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from advisor.measure import record  # noqa: E402
from advisor.measure.tracker import BLOCK, MemoryTracker, rounded  # noqa: E402
from estimators.model import ModelSpec  # noqa: E402
from estimators.setup import Setup  # noqa: E402

TINY = ModelSpec(
    name="tiny",
    model_type="llama",
    hidden_size=64,
    intermediate_size=128,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    vocab_size=256,
    max_positions=512,
)


# ------------------------------------------------------------------------------------------------ tracker
def test_rounding_to_allocator_blocks():
    assert rounded(1) == BLOCK == 512 and rounded(512) == 512 and rounded(513) == 1024


def test_tracker_counts_live_storages_and_the_peak():
    with MemoryTracker() as tr:
        a = torch.empty(1000, dtype=torch.float32)  # 4000 bytes -> 4096
        b = a.view(10, 100)  # a view adds nothing
        c = torch.empty(10, dtype=torch.bfloat16)  # 20 bytes -> 512
        assert tr.total == 4096 + 512
        del a, b
        assert tr.total == 512  # freed when the last reference goes
        d = torch.empty(2000, dtype=torch.uint8)  # 2048
        assert tr.total == 512 + 2048
    assert tr.peak == 4096 + 512
    assert tr.peak_categories["parameters"] == 4096 + 512  # phase "setup" labels allocations as parameters
    del c, d


def test_tracker_relabels_by_storage_identity():
    tr = MemoryTracker()
    x = torch.empty(256)
    tr.track(x, "activations")
    tr.track(x.view(16, 16), "gradients")
    assert tr.totals["gradients"] == 1024 and tr.totals["activations"] == 0


# ------------------------------------------------------------------------------------------------ CUDA emulation
def test_cuda_autocast_policies_on_cpu():
    import torch.nn.functional as F

    from advisor.measure.autocast import CudaAutocastOps, gpu_autocast_queries

    x = torch.randn(4, 8, dtype=torch.bfloat16)
    w = torch.randn(8, 8)
    with gpu_autocast_queries(), torch.autocast("cpu", dtype=torch.bfloat16), CudaAutocastOps():
        assert torch.is_autocast_enabled()  # the no-device question peft asks answers for the active autocast
        assert F.linear(x, w).dtype == torch.bfloat16  # lower-precision list (CPU autocast itself)
        assert torch.pow(x, 2).dtype == torch.float32  # CUDA fp32 list (CPU would stay bf16)
        assert (x**3).dtype == torch.float32
        assert torch.softmax(x, -1).dtype == torch.float32  # fp32_set_opt_dtype
        assert F.layer_norm(x, (8,)).dtype == torch.float32
        assert x.sum().dtype == torch.float32
    with CudaAutocastOps():
        assert torch.pow(x, 2).dtype == torch.bfloat16  # outside autocast nothing changes


def test_dropout_runs_the_fused_kernel_that_keeps_a_bool_mask():
    import torch.nn.functional as F

    from advisor.measure.autocast import CudaAutocastOps

    x = torch.randn(64, 64, requires_grad=True)
    with MemoryTracker() as tr, CudaAutocastOps():
        tr.phase = "forward"
        y = F.dropout(x, 0.1, True)
    kept = {tuple(n.shape): n.dtype for n in [y.grad_fn._saved_result1]}  # NativeDropoutBackward keeps the mask
    assert kept == {(64, 64): torch.bool}


def test_flash_attention_keeps_output_and_logsumexp_in_gpu_layout():
    from advisor.measure.attention import FlashAttention

    b, h, kv, s, d = 1, 4, 2, 16, 8
    q = torch.randn(b, s, h, d).transpose(1, 2).requires_grad_()  # [B, H, S, D] view of [B, S, H, D]
    k = torch.randn(b, s, kv, d).transpose(1, 2).requires_grad_()
    v = torch.randn(b, s, kv, d).transpose(1, 2).requires_grad_()
    out = FlashAttention.apply(q, k, v, 0.0, d**-0.5, True)
    assert out.shape == (b, h, s, d) and out.transpose(1, 2).is_contiguous()  # o_proj reads it through a view
    saved = out.grad_fn.saved_tensors
    assert [tuple(x.shape) for x in saved][-1] == (b, h, s)  # log-sum-exp per head and row, fp32
    out.sum().backward()
    assert q.grad.shape == q.shape and k.grad.shape == k.shape


# ------------------------------------------------------------------------------------------------ trace vs real
def traced_alike(spec, setup: Setup):
    """Trace `setup` with fake tensors (CPU flash kernel) and for real on the CPU, assert both count the same bytes
    (peak, categories, phase peaks, trainable parameters) and return the fake trace."""
    from advisor.measure.trace import trace

    fake = trace(spec, setup, cpu_kernel=True)
    real = trace(spec, setup, real=True)
    assert fake.peak == real.peak
    assert fake.categories == real.categories
    assert fake.phase_peaks == real.phase_peaks
    assert fake.trainable == real.trainable
    return fake


@pytest.mark.parametrize(
    "setup",
    [
        Setup(adaptation="lora", micro_batch=2, seq_len=64, loss="full"),
        Setup(adaptation="lora", micro_batch=2, seq_len=64, grad_ckpt=False, loss="full"),
        Setup(adaptation="full", micro_batch=2, seq_len=64, loss="full"),
        Setup(adaptation="full", micro_batch=2, seq_len=64, grad_ckpt=True, precision="bf16-mixed", loss="full"),
    ],
    ids=["lora-gc", "lora", "full", "full-mixed-gc"],
)
def test_fake_trace_equals_a_real_cpu_run(setup):
    """The tracer itself: the fake-tensor step and a real CPU step of the same tiny model count the same bytes
    (both with the CPU flash kernel, the only piece that differs from the GPU emulation)."""
    from advisor.measure.trace import trace

    fake = trace(TINY, setup, cpu_kernel=True)
    real = trace(TINY, setup, real=True)
    assert fake.mode == "fake" and real.mode == "real-cpu"
    assert fake.peak == real.peak
    assert fake.categories == real.categories
    assert fake.phase_peaks == real.phase_peaks
    assert fake.trainable == real.trainable


@pytest.fixture
def small_fused_tiles(monkeypatch):
    """TRL's tile sizes shrunk so the tiny model needs several tiles, with uneven tails: 256 vocabulary columns in
    chunks of 96, 127 or 63 scored tokens in chunks of 48."""
    pytest.importorskip("trl")
    import trl.kernels.chunked_logprob as ck
    import trl.trainer.utils as tu

    monkeypatch.setattr(tu, "_CHUNKED_LOGPROB_CHUNK_SIZE", 96)
    monkeypatch.setattr(ck, "TOKEN_CHUNK_SIZE", 48)


@pytest.mark.parametrize(
    "spec,setup",
    [
        pytest.param(TINY, Setup(adaptation="lora", micro_batch=2, seq_len=64, loss="fused"), marks=pytest.mark.slow),
        (TINY.with_(tie_embeddings=True), Setup(adaptation="full", micro_batch=1, seq_len=64, grad_ckpt=False, loss="fused")),
        pytest.param(
            TINY, Setup(adaptation="full", micro_batch=2, seq_len=64, grad_ckpt=True, precision="bf16-mixed", loss="fused"), marks=pytest.mark.slow
        ),
    ],
    ids=["lora-gc", "full-tied", "full-mixed-gc"],
)  # full-tied stays in the fast suite; the others take 5-9 s each
def test_fused_head_trace_equals_a_real_cpu_run(spec, setup, small_fused_tiles):
    """TRL's fused LM head (add_fused_lm_head + ChunkedLogProbFunction) on its CUDA path: the fake-tensor step and a
    real CPU step of TRL's own code count the same bytes (the boolean-mask ops emulated under fake tensors only)."""
    from advisor.measure.trace import trace

    fake = trace(spec, setup, cpu_kernel=True)
    real = trace(spec, setup, real=True)
    assert fake.peak == real.peak
    assert fake.categories == real.categories
    assert fake.phase_peaks == real.phase_peaks
    assert any("add_fused_lm_head" in n for n in fake.notes)
    full = trace(spec, setup.with_(loss="full"), cpu_kernel=True)
    assert not full.notes and full.phase_peaks["forward"] != fake.phase_peaks["forward"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "setup",
    [
        Setup(train="dpo", adaptation="lora", micro_batch=1, seq_len=64),
        Setup(train="dpo", adaptation="full", micro_batch=1, seq_len=64, grad_ckpt=True),
        Setup(train="reward", adaptation="lora", micro_batch=2, seq_len=64),
    ],
    ids=["dpo-lora-gc", "dpo-full-gc", "reward-lora-gc"],
)
def test_preference_trace_equals_a_real_cpu_run(setup, small_fused_tiles):
    """DPO (policy + no_grad reference forward through TRL's fused head: LoRA adapter disabled, full a frozen copy)
    and the reward model (seq-cls, chosen + rejected): the fake-tensor step and a real CPU step count the same."""
    fake = traced_alike(TINY, setup)
    assert any(setup.train in n.lower() for n in fake.notes)
    if setup.adaptation == "full":  # the frozen reference copy doubles the weights
        assert fake.categories["parameters"] >= 2 * fake.trainable * 2


def test_fused_head_on_its_cuda_path_computes_the_hf_loss(small_fused_tiles):
    """The patches that put TRL's head on its CUDA path (compact scoring, Triton kernels run untracked) keep its
    values: the loss and every gradient equal those of the model's own causal-LM loss (fp32)."""
    from advisor.measure import fused
    from advisor.measure.build import build_model
    from advisor.measure.step import forward_loss

    torch.manual_seed(0)
    model, _ = build_model(TINY.with_(tie_embeddings=True), Setup(adaptation="full", precision="fp32", loss="fused"))
    ids = torch.randint(0, TINY.vocab_size, (2, 32))
    batch = {"input_ids": ids, "labels": ids.clone()}
    with MemoryTracker() as tracker, fused.cuda_path(tracker):
        loss = forward_loss(model, batch, None, loss="fused")
        loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    reference = forward_loss(model, batch, None, loss="full")
    reference.backward()
    torch.testing.assert_close(loss, reference)
    for name, p in model.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["full", "fused"])
def test_fake_trace_equals_a_real_cpu_run_qlora(loss):
    pytest.importorskip("bitsandbytes")
    if loss == "fused":
        pytest.importorskip("trl")
    from advisor.measure.trace import trace

    setup = Setup(adaptation="qlora", micro_batch=2, seq_len=64, loss=loss)
    fake = trace(TINY.with_(hidden_size=128, intermediate_size=256), setup, cpu_kernel=True)
    real = trace(TINY.with_(hidden_size=128, intermediate_size=256), setup, real=True)
    assert fake.peak == real.peak and fake.categories == real.categories


@pytest.mark.slow
@pytest.mark.parametrize("train", ["dpo", "reward"])
def test_preference_trace_equals_a_real_cpu_run_qlora(train, small_fused_tiles):
    """QLoRA under DPO (reference = the adapter disabled over the same 4-bit base) and the reward model: bitsandbytes'
    own Linear4bit code in both runs, fake and real count the same."""
    pytest.importorskip("bitsandbytes")
    from advisor.measure.trace import trace

    spec = TINY.with_(hidden_size=128, intermediate_size=256)
    setup = Setup(train=train, adaptation="qlora", micro_batch=2 if train == "reward" else 1, seq_len=64)
    fake = trace(spec, setup, cpu_kernel=True)
    real = trace(spec, setup, real=True)
    assert fake.peak == real.peak and fake.categories == real.categories
    assert fake.phase_peaks == real.phase_peaks


GRPO_TINY = dict(train="grpo", micro_batch=2, seq_len=64, response_len=16, num_generations=4)


@pytest.mark.slow
@pytest.mark.parametrize(
    "setup",
    [
        Setup(adaptation="lora", **GRPO_TINY),
        Setup(adaptation="full", ref_model="none", **GRPO_TINY),
        Setup(adaptation="full", grad_ckpt=True, precision="bf16-mixed", grad_accum=2, **GRPO_TINY),
    ],
    ids=["lora-beta", "full-ref-none", "full-copy-mixed-gc-accum"],
)
def test_grpo_trace_equals_a_real_cpu_run(setup, small_fused_tiles):
    """GRPOTrainer: a generation round (HF generate: prefill and decode with a DynamicCache), the no_grad old-policy
    and reference log-prob forwards, training steps scoring the completion tokens through the fused head: the
    fake-tensor trace and a real CPU run count the same bytes in every phase."""
    fake = traced_alike(TINY, setup)
    assert any("GRPOTrainer" in n for n in fake.notes)
    assert "generation" in fake.phase_peaks
    assert ("reference forward" in fake.phase_peaks) == (setup.ref_model != "none")
    # 4 completions per round, 2 per micro-step: the old log-probs pass runs unless accumulation spans the round
    assert ("old log-probs" in fake.phase_peaks) == (setup.grad_accum == 1)
    if setup.adaptation == "full" and setup.ref_model != "none":  # beta > 0: the frozen reference copy
        assert fake.categories["parameters"] >= 2 * fake.trainable * 2


def test_grpo_trace_refuses_the_full_logits_loss():
    from advisor.measure.trace import trace

    with pytest.raises(ValueError, match="fused LM head"):
        trace(TINY, Setup(adaptation="lora", loss="full", **GRPO_TINY))


@pytest.mark.slow
def test_grpo_trace_equals_a_real_cpu_run_qlora(small_fused_tiles):
    """QLoRA GRPO: generation through bitsandbytes' Linear4bit without autocast (kbit-upcast fp32 weights), the
    reference with the adapter disabled over the same 4-bit base."""
    pytest.importorskip("bitsandbytes")
    from advisor.measure.trace import trace

    spec = TINY.with_(hidden_size=128, intermediate_size=256)
    setup = Setup(adaptation="qlora", **GRPO_TINY)
    fake = trace(spec, setup, cpu_kernel=True)
    real = trace(spec, setup, real=True)
    assert fake.peak == real.peak and fake.categories == real.categories
    assert fake.phase_peaks == real.phase_peaks


@pytest.mark.parametrize("loss", ["fused", "full"])
def test_trace_matches_the_estimator_on_a_tiny_model(loss):
    from advisor.measure.trace import trace
    from estimators import estimate

    if loss == "fused":
        pytest.importorskip("trl")
    setup = Setup(adaptation="lora", micro_batch=2, seq_len=64, loss=loss)
    traced = trace(TINY, setup).peak
    est = estimate(TINY, setup).peak_allocated
    assert abs(est - traced) / traced < 0.05  # tiny tensors: 512-byte rounding and small buffers weigh more


@pytest.mark.slow
def test_full_size_trace_matches_its_stored_row():
    """Re-trace one stored configuration at full size: the tracer still produces what traces.jsonl says."""
    from advisor.measure.trace import trace
    from estimators.catalog import resolve_model

    rows = [r for r in record.read_rows() if r["model"] == "llama-3.2-1b" and r["setup"]["method"] == "lora"]
    if not rows:
        pytest.skip("no stored llama-3.2-1b LoRA row")
    row = rows[0]
    result = trace(resolve_model(row["model"]).spec, Setup.from_dict(row["setup"]))
    assert result.peak == row["peak"]["allocated"]


# ------------------------------------------------------------------------------------------------ rows
def test_trace_row_has_provenance_and_round_trips(tmp_path):
    from advisor.measure.trace import TraceResult

    result = TraceResult(
        peak=1024,
        categories={"parameters": 512, "activations": 512},
        peak_phase="backward",
        phase_peaks={"forward": 1000, "backward": 1024},
        attention="flash",
        quantization="",
        mode="fake",
        seconds=1.0,
        trainable=10,
        params=100,
    )
    setup = Setup(adaptation="lora").to_dict()
    row = record.trace_row("llama-3.2-1b", setup, result, date="2025-01-01")
    for key in ("date", "device", "mode", "attention", "setup", "model", "categories", "peak_phase", "versions"):
        assert row[key] != ""
    assert set(row["versions"]) >= {"torch", "transformers", "peft", "bitsandbytes"}
    path = tmp_path / "rows.jsonl"
    record.write_row(row, path)
    record.write_row(dict(row, seconds=2.0), path)  # same id: replaced, not appended
    rows = record.read_rows(path)
    assert len(rows) == 1 and rows[0]["seconds"] == 2.0
    assert Setup.from_dict(rows[0]["setup"]) == Setup(adaptation="lora")


def test_stored_rows_are_well_formed():
    rows = record.read_rows()
    assert rows, "estimators/calibration/traces.jsonl is empty"
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))
    for r in rows:
        assert r["schema"] == record.SCHEMA and r["mode"] in ("fake", "real-cpu", "cuda")
        assert r["peak"]["allocated"] >= sum(v for k, v in r["categories"].items()) * 0.999
        assert r["id"] == record.row_id(r["model"], r["setup"], r["mode"])
        Setup.from_dict(r["setup"])


# ------------------------------------------------------------------------------------------------ CUDA mode bookkeeping
def test_cuda_phase_stats_and_row():
    from advisor.measure.cuda import PhaseStats, cuda_row

    stats = PhaseStats()
    stats.add("forward", 10, 12, 15)
    stats.add("backward", 30, 32, 35)
    stats.add("forward", 11, 12, 15)  # a second step: peaks per phase are maxima
    stats.add("optimizer step", 20, 32, 35)
    assert stats.peak() == ("backward", 30, 32, 35)
    assert stats.allocated["forward"] == 11
    row = cuda_row(
        "llama-3.2-1b",
        Setup(),
        stats,
        categories={"parameters": 5},
        device_name="H100",
        attention="sdpa",
        quantization="",
        params=1,
        trainable=1,
        seconds=1.0,
        baseline={"total": 80},
    )
    assert row["mode"] == "cuda" and row["peak"] == {"allocated": 30, "reserved": 32, "device": 35}
    assert row["phase_reserved"]["backward"] == 32 and json.loads(json.dumps(row)) == row


def test_cuda_mode_refuses_without_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    from advisor.measure.cuda import measure_cuda

    with pytest.raises(ValueError, match="no CUDA device"):
        measure_cuda(TINY, Setup(), "tiny")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_mode_on_a_small_model():
    from advisor.measure.cuda import measure_cuda

    row = measure_cuda(TINY, Setup(adaptation="lora", micro_batch=2, seq_len=64), "tiny")
    assert row["peak"]["allocated"] <= row["peak"]["reserved"] <= row["peak"]["device"]


# ------------------------------------------------------------------------------------------------ command
def test_measure_help_does_not_import_torch():
    code = (
        "import sys, contextlib, io\nfrom advisor.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main(['measure', '--help'])\n    except SystemExit:\n        pass\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.slow
def test_measure_command_traces_a_config_json(tmp_path):
    from estimators.hf_config import hf_config_from_spec

    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(hf_config_from_spec(TINY)))
    out = tmp_path / "rows.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "advisor",
            "measure",
            "--model",
            str(cfg),
            "--method",
            "lora",
            "--seq-len",
            "32",
            "--micro-batch",
            "2",
            "--out",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    assert row["mode"] == "fake" and row["peak"]["allocated"] > 0
    assert record.read_rows(out)[0]["id"] == row["id"]
