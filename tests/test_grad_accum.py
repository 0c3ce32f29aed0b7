"""Gradient accumulation is priced (issue 13 item 4): micro-steps 2+ run with the earlier micro-steps' gradients."""

from __future__ import annotations

from estimators import accuracy as acc
from estimators import estimate
from estimators.accuracy_rows import read_traces
from estimators.accuracy_traces import compare_traces
from estimators.catalog import resolve_model
from estimators.grad_accum import ACCUMULATED, SUFFIX, with_accumulation
from estimators.setup import Setup
from estimators.terms import TermValue

SPEC = resolve_model("7b").spec  # llama-2-7b
FULL = Setup(adaptation="full", precision="bf16-mixed")


def _grads(est, phase: str) -> int:
    return sum(v.bytes for v in est.phases[phase] if v.category == "gradients")


def test_full_fine_tuning_adds_a_whole_set_of_fp32_gradients_to_the_loss_peak():
    one, four = estimate(SPEC, FULL), estimate(SPEC, FULL.with_(grad_accum=4))
    fp32_grads = 4 * one.trainable  # bf16-mixed keeps fp32 master weights, so fp32 gradients
    assert one.peak_phase == "backward (loss)" and _grads(one, "backward (loss)") == 0
    assert four.peak_phase == "backward (loss)" + SUFFIX
    assert four.peak_allocated - one.peak_allocated == fp32_grads
    # the optimizer step runs once per k micro-steps: unchanged
    assert sum(v.bytes for v in four.phases["optimizer step"]) == sum(v.bytes for v in one.phases["optimizer step"])


def test_backward_phases_only_gain_the_gradients_not_yet_produced_at_that_point():
    est = estimate(SPEC, FULL.with_(grad_accum=2))
    full = _grads(est, "optimizer step")
    for name in ("forward", "backward (loss)", "backward (top layer)", "backward (layers)"):
        assert _grads(est, name + SUFFIX) == full, name  # never a second set: AccumulateGrad adds in place
        assert sum(v.bytes for v in est.phases[name + SUFFIX]) - sum(v.bytes for v in est.phases[name]) == full - _grads(est, name)


def test_lora_accumulates_only_the_adapters_gradients():
    lora = Setup(adaptation="lora")
    one, two = estimate(SPEC, lora), estimate(SPEC, lora.with_(grad_accum=2))
    grads = _grads(one, "optimizer step")
    assert 0 < two.peak_allocated - one.peak_allocated <= grads < 0.02 * one.peak_allocated


def test_one_micro_step_has_no_twin_phases():
    assert not any(SUFFIX in name for name in estimate(SPEC, FULL).phases)
    phases = {"forward": [TermValue("w", "parameters", 10, "")], "optimizer step": [TermValue("g", "gradients", 4, "")]}
    assert with_accumulation(phases, 1) is phases
    twin = with_accumulation(phases, 3)["forward" + SUFFIX]
    assert [(v.name, v.bytes) for v in twin] == [("w", 10), (ACCUMULATED, 4)]


def _accumulated(est) -> int:
    return sum(v.bytes for v in est.phases["forward" + SUFFIX] if v.name == ACCUMULATED)


def test_fsdp_no_sync_keeps_the_accumulated_gradients_unsharded_zero2_keeps_its_partition():
    base = FULL.with_(gpus=4, grad_accum=2)
    fsdp, zero2, ddp = (estimate(SPEC, base.with_(parallel=p)) for p in ("fsdp", "zero2", "ddp"))
    full = _grads(ddp, "optimizer step")
    assert _accumulated(ddp) == full  # DDP: every rank holds every gradient
    assert _accumulated(fsdp) >= full - _grads(estimate(SPEC, FULL), "forward")  # unsharded under no_sync
    assert _accumulated(zero2) < full / 3  # reduced into the 1/4 partition every micro-step


def test_the_traced_accumulation_rows_are_stored_and_priced():
    rows = [r for r in read_traces() if r["setup"].get("grad_accum", 1) > 1]
    big = [r for r in rows if r["model"] == "llama-2-7b" and r["setup"]["method"] == "full" and r["setup"]["grad_accum"] == 4]
    assert big and abs(big[0]["peak"]["allocated"] / 2**30 - 127.36) < 0.05  # the 127.4 GiB
    errors = [abs(c.error) for c in compare_traces(rows)]
    assert len(errors) >= 4 and max(errors) <= acc.TRACE_MAX


def test_help_no_longer_says_accumulation_is_free(advisor_main):
    run = advisor_main("estimate", "--help")
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "no memory cost" not in out and "micro-steps 2+" in out
