"""The causal-LM loss each model family's own forward ran under transformers 4.x (rules/stacks.toml [[hf_loss]],
estimators/stack_heads.py hf_loss_code): GPTBigCode (SantaCoder) scored its bf16 logits without an fp32 upcast up to
4.48.2, which is what the fms-acceleration SantaCoder rows (transformers 4.48.1, the benchmark's recorded freeze) ran. Checked by
hand: SantaCoder V 49280, h 2048, 24 layers, tied embeddings."""

import pytest

from estimators import estimate
from estimators.accuracy_published import published_estimate
from estimators.accuracy_rows import read_published
from estimators.catalog import resolve_model
from estimators.result import LOGITS_BACKWARD, LOGITS_FORWARD
from estimators.setup import Setup
from estimators.stack_heads import hf_loss_code
from estimators.stack_terms import applied

SC = resolve_model("santacoder").spec
V = 49_280


def term(est, phase, name):
    hits = [v for v in est.phases[phase] if v.name == name]
    assert len(hits) == 1, (phase, name, [v.name for v in est.phases[phase]])
    return hits[0]


def ids(key, versions, **kw):
    """Behaviour ids for the HF Trainer's own loss (`applied` takes the Setup as given: loss="full" spelled out)."""
    return {b["id"] for b in applied(resolve_model(key).spec, Setup(stack="hf-trainer", versions=versions, loss="full", **kw))}


def test_santacoder_4_45_scores_bf16_logits_by_hand():
    four = estimate(SC, Setup(stack="hf-trainer", versions="transformers=4.45", adaptation="full", micro_batch=4, seq_len=2048))
    tv, shifted = 4 * 2048 * V, 4 * 2047 * V
    # bf16 logits, their bf16 shifted copy (micro-batch 4: the slice is not contiguous), bf16 log-softmax
    assert term(four, "forward", LOGITS_FORWARD).bytes == 2 * tv + 2 * shifted + 2 * shifted == 2_421_422_080
    # saved bf16 log-softmax, NLL's gradient, log-softmax's gradient
    assert term(four, "backward (loss)", LOGITS_BACKWARD).bytes == 6 * shifted == 2_421_027_840
    one = estimate(SC, Setup(stack="hf-trainer", versions="transformers=4.45", adaptation="full", micro_batch=1, seq_len=2048))
    assert term(one, "forward", LOGITS_FORWARD).bytes == 2 * 2048 * V + 2 * 2047 * V  # one sequence: no copy
    now = estimate(SC, Setup(stack="hf-trainer", adaptation="full", micro_batch=4, seq_len=2048))
    assert term(now, "forward", LOGITS_FORWARD).bytes == 10 * tv  # transformers 5: ForCausalLMLoss upcasts


def test_autocast_runs_the_old_bigcode_loss_in_fp32():
    est = estimate(SC, Setup(stack="hf-trainer", versions="transformers=4.45", precision="bf16-mixed", micro_batch=2, seq_len=1024))
    tv, shifted = 2 * 1024 * V, 2 * 1023 * V
    assert term(est, "forward", LOGITS_FORWARD).bytes == 2 * tv + 2 * shifted + 4 * shifted + 4 * shifted
    assert term(est, "backward (loss)", LOGITS_BACKWARD).bytes == 12 * shifted


@pytest.mark.parametrize(
    "key,version,expected",
    [
        ("santacoder", "4.45", "compute-dtype"),
        ("santacoder", "4.48.2", "compute-dtype"),
        ("santacoder", "4.48.3", "loss-function"),
        ("gpt2", "4.44.2", "compute-dtype"),
        ("pythia-160m", "4.48.3", "compute-dtype"),
        ("pythia-160m", "4.49", "loss-function"),
        ("7b", "4.45", "fp32-in-model"),
        ("7b", "4.46", "loss-function"),
        ("mistral-7b-v0.1", "4.47.1", "fp32-in-model"),
        ("mistral-7b-v0.1", "4.48", "loss-function"),
        ("granite-3.0-1b-a400m", "4.48.2", "fp32-in-model"),
        ("granite-3.0-1b-a400m", "4.48.3", "loss-function"),
        ("santacoder", "", "loss-function"),
    ],
)
def test_the_loss_code_by_family_and_version(key, version, expected):
    versions = f"transformers={version}" if version else ""
    assert hf_loss_code(resolve_model(key).spec, Setup(stack="hf-trainer", versions=versions)) == expected


def test_exactly_one_hf_loss_behaviour_applies():
    assert ids("santacoder", "transformers=4.45") >= {"hf-loss-compute-dtype"}
    assert "hf-loss-fp32-logits" not in ids("santacoder", "transformers=4.45")  # the old Llama-wide scope was wrong here
    assert "hf-loss-fp32-logits" in ids("mistral-7b-v0.1", "transformers=4.47.1")
    assert "hf-loss-shift-copy" not in ids("mistral-7b-v0.1", "transformers=4.47.1")  # Mistral had no ForCausalLMLoss yet
    assert "hf-loss-shift-copy" in ids("santacoder", "transformers=4.48.3", micro_batch=2)
    for key in ("santacoder", "7b", "mistral-7b-v0.1", "pythia-160m"):
        for v in ("4.40", "4.45", "4.46", "4.47", "4.48", "4.48.3", "4.49", "5.0"):
            loss_ids = ids(key, f"transformers={v}") & {"hf-loss-compute-dtype", "hf-loss-fp32-logits", "hf-loss-shift-copy"}
            assert len(loss_ids) <= 1, (key, v, loss_ids)


def _row(row_id):
    return next(r for r in read_published() if r["row_id"] == row_id)


def test_fms_rows_run_the_recorded_freeze_with_one_foreach_scratch():
    for row_id in ("r0207", "r0209"):
        priced = published_estimate(_row(row_id))
        assert priced["setup"].stack == "trl" and priced["setup"].versions == "transformers=4.48.1,trl=0.13.0,peft=0.13.2,torch=2.4.1"
        assert priced["setup"].loss == "full" and priced["estimate"].setup.loss == "full"  # trl 0.13: no fused head
        est = priced["estimate"]
        step = est.phases["optimizer step"]
        scratch = [v.bytes for v in step if "foreach" in v.name]
        states = sum(v.bytes for v in step if v.name == "optimizer states")
        assert scratch == [states // 2]  # the stack term, once
        assert "foreach AdamW (not fused)" not in priced["note"]  # accuracy.foreach_adamw_peak not applied on top
        assert priced["allocated"] == est.peak_allocated


def test_the_stack_foreach_scratch_is_sharded_under_fsdp():
    """FSDP FULL_SHARD steps each rank's shard: the scratch is half the (sharded) states on this GPU, as
    accuracy.foreach_adamw_peak priced it before the stack term took over."""
    est = published_estimate(_row("r0208"))["estimate"]
    step = est.phases["optimizer step"]
    states = sum(v.bytes for v in step if v.name == "optimizer states")
    assert [v.bytes for v in step if "foreach" in v.name] == [states // 2]
