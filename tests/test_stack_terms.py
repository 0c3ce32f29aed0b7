"""Stack- and version-dependent terms (estimators/stack_terms.py), each checked by hand against the arithmetic of
the library source it was read from (docstrings give the lines). Llama 2 7B: h 4096, V 32000, 32 layers;
Llama 3.1 8B: h 4096, V 128256. Micro-batch 1 x 2048 tokens unless a test says otherwise."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from estimators import estimate
from estimators.catalog import resolve_model
from estimators.result import LOGITS_BACKWARD, LOGITS_FORWARD
from estimators.setup import Setup
from estimators.stack_heads import liger_head, litgpt_head, torchtune_head, unsloth_head
from estimators.stack_terms import PRICES, applied, behaviours

L7 = resolve_model("7b").spec
L8 = resolve_model("8b").spec
T = 2048
TV8 = T * 128_256  # logits of Llama 3.1 8B, one 2048-token sequence
LORA_7B = 39_976_960  # LoRA r16 all-linear on Llama 2 7B (meta-device count, /work/shared/design/STACK.md)


def term(est, phase, name):
    hits = [v for v in est.phases[phase] if v.name == name]
    assert len(hits) == 1, (phase, name, [v.name for v in est.phases[phase]])
    return hits[0]


def test_every_behaviour_row_has_a_function_and_a_source():
    rows = behaviours()
    assert {b.id for b in rows} == set(PRICES)
    assert all(b.source and b.summary and b.stacks for b in rows)


def test_the_default_stack_is_priced_as_before():
    """trl at the pinned versions: no behaviour applies, so estimates are estimators/terms.py's alone (which is why
    estimators.stacks.apply_stack skips loading stack_terms for it)."""
    from estimators.stacks import is_default_stack

    for adaptation in ("full", "lora", "qlora"):
        for loss in ("fused", "full"):
            for versions in ("", "torch=2.13.0,transformers=5.24.0,peft=0.21.2,trl=1.16.0"):
                setup = Setup(adaptation=adaptation, loss=loss, versions=versions)
                assert applied(L8, setup) == []  # stack_terms.applied itself, not the shortcut
                assert not any("[" in v.note for v in estimate(L8, setup).terms)
            assert is_default_stack(Setup(adaptation=adaptation, loss=loss))
    assert not is_default_stack(Setup(loss="chunked")) and not is_default_stack(Setup(dora=True))


# ------------------------------------------------------------------------------------------------ the HF loss by version
def test_transformers_before_4_46_keeps_fp32_logits_and_a_shifted_copy():
    one = estimate(L8, Setup(stack="hf-trainer", versions="transformers=4.44.2"))
    assert one.setup.loss == "full"
    shifted = 2047 * 128_256
    assert term(one, "forward", LOGITS_FORWARD).bytes == 4 * TV8 + 4 * shifted  # fp32 logits, fp32 log-softmax (no copy)
    two = estimate(L8, Setup(stack="hf-trainer", versions="transformers=4.44.2", micro_batch=2))
    assert term(two, "forward", LOGITS_FORWARD).bytes == 4 * 2 * TV8 + 4 * 2 * shifted + 4 * 2 * shifted  # + the shifted copy


def test_transformers_4_46_to_4_48_adds_the_shift_copy_to_the_current_loss():
    now = estimate(L8, Setup(stack="hf-trainer", micro_batch=2))
    old = estimate(L8, Setup(stack="hf-trainer", versions="transformers=4.48.3", micro_batch=2))
    shifted = 2 * 2047 * 128_256
    assert term(now, "forward", LOGITS_FORWARD).bytes == (2 + 4 + 4) * 2 * TV8  # bf16 logits, fp32 upcast, fp32 log-softmax
    assert term(old, "forward", LOGITS_FORWARD).bytes == (2 + 4) * 2 * TV8 + 4 * shifted + 4 * shifted  # + the shifted fp32 copy
    assert term(old, "backward (loss)", LOGITS_BACKWARD).bytes == 12 * shifted  # as now, over one position fewer
    assert term(now, "backward (loss)", LOGITS_BACKWARD).bytes == 12 * 2 * TV8
    later = [b["id"] for b in applied(L8, Setup(stack="hf-trainer", versions="transformers=4.49"))]
    assert "hf-loss-shift-copy" not in later and "hf-loss-fp32-logits" not in later  # 4.49 pads the labels


def _head_rows():
    path = Path(__file__).resolve().parent.parent / "estimators" / "calibration" / "stack_heads.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("row", _head_rows(), ids=lambda r: f"transformers-{r['versions']['transformers']}-b{r['micro_batch']}")
def test_the_hf_loss_terms_match_the_measured_heads(row):
    """Rows measured by `python -m advisor.measure.stack_head` with transformers 4.44.2, 4.48.3 and 5.24.0 installed:
    the forward head term per logit equals the measured head window; the backward term is the saved log-softmax
    (4 bytes per logit) plus the measured backward window."""
    from estimators.stack_heads import hf_loss_code

    # the row's family (`--family`, the first word of "model"): its own loss code is what was measured
    spec = resolve_model("santacoder").spec.with_(vocab_size=row["vocab"]) if row["model"].startswith("gpt_bigcode") else L7
    assert spec.vocab_size == row["vocab"]
    setup = Setup(
        stack="hf-trainer", versions=f"transformers={row['versions']['transformers']}", micro_batch=row["micro_batch"], seq_len=row["tokens"]
    )
    est = estimate(spec, setup)
    tv = row["micro_batch"] * row["tokens"] * row["vocab"]
    assert term(est, "forward", LOGITS_FORWARD).bytes / tv == pytest.approx(row["head_forward_per_logit"], abs=0.01)
    lsm = 2 if hf_loss_code(spec, est.setup) == "compute-dtype" else 4  # the saved log-softmax's dtype
    saved = lsm * (row["micro_batch"] * (row["tokens"] - (0 if row["versions"]["transformers"].startswith("5") else 1)) * row["vocab"])
    assert (term(est, "backward (loss)", LOGITS_BACKWARD).bytes - saved) / tv == pytest.approx(row["backward_start_per_logit"], abs=0.01)


def test_the_version_terms_need_the_hf_loss():
    """TRL's fused head does not go through ForCausalLMLoss, so old transformers change nothing there."""
    ids = [b["id"] for b in applied(L8, Setup(stack="trl", versions="transformers=4.44"))]
    assert "hf-loss-fp32-logits" not in ids


# ------------------------------------------------------------------------------------------------ chunked heads
def test_torchtune_chunked_output_loss_by_hand():
    fwd, bwd = torchtune_head(L8, Setup(stack="torchtune"))
    chunk = 256 * 128_256  # 2048 tokens / 8 chunks
    assert fwd == 2 * TV8 + 4 * TV8 + 4 * chunk == 1_707_343_872  # bf16 logits, fp32 log-softmax of all, one upcast
    assert bwd == 4 * TV8 + 2 * 4 * chunk == 1_313_341_440


def test_litgpt_chunked_cross_entropy_by_hand():
    fwd, bwd = litgpt_head(L8, Setup(stack="litgpt"))
    assert fwd == 2 * TV8 + 2 * TV8 == 1_050_673_152  # bf16-true: no upcast, bf16 log-softmax
    assert bwd == 4 * TV8 + 2 * 2 * 128 * 128_256 == 1_116_340_224
    fwd_mixed, _ = litgpt_head(L8, Setup(stack="litgpt", precision="bf16-mixed"))
    assert fwd_mixed == 2 * TV8 + 4 * TV8  # autocast runs the log-softmax in fp32


def test_liger_fused_linear_ce_by_hand():
    fwd, bwd = liger_head(L8, Setup(stack="hf-trainer", loss="chunked"))
    # chunk = next_power_of_2(ceil(2048 / ceil(128256 / 4096))) = next_power_of_2(64) = 64
    assert fwd == 2 * T * 4096 * 2 + 64 * 128_256 * 2 + 4 * T == 49_979_392
    assert bwd == T * 4096 * 2 == 16_777_216


def test_unsloth_fused_ce_by_hand():
    fwd, bwd = unsloth_head(L8, Setup(stack="unsloth"))
    # rows = min(2048, int(2 GiB / (128256 * 8)) = 2093, max(512, 2048 / 8)) = 512
    assert fwd == 2 * T * 4096 * 2 + 512 * 128_256 * 8 + 32 * T == 558_956_544
    assert bwd == T * 4096 * 2


def test_chunked_heads_replace_the_logits_terms_in_the_estimate():
    full = estimate(L8, Setup(stack="hf-trainer"))
    liger = estimate(L8, Setup(stack="hf-trainer", loss="chunked"))
    assert term(liger, "forward", LOGITS_FORWARD).bytes == liger_head(L8, liger.setup)[0]
    assert term(liger, "backward (loss)", LOGITS_BACKWARD).bytes == liger_head(L8, liger.setup)[1]
    saved = term(full, "forward", LOGITS_FORWARD).bytes - term(liger, "forward", LOGITS_FORWARD).bytes
    assert saved == 10 * TV8 - 49_979_392  # 10 bytes per logit of a 128k vocabulary (2.4 GiB) gone


# ------------------------------------------------------------------------------------------------ adapters and optimizer
def test_peft_before_0_12_keeps_lora_in_bf16():
    new = estimate(L7, Setup(stack="hf-trainer"))
    old = estimate(L7, Setup(stack="hf-trainer", versions="peft=0.11.1"))
    step = "optimizer step"
    assert term(new, step, "LoRA adapters").bytes == LORA_7B * 4
    assert term(old, step, "LoRA adapters").bytes == LORA_7B * 2
    assert term(new, step, "gradients").bytes - term(old, step, "gradients").bytes == LORA_7B * 2
    assert term(new, step, "optimizer states").bytes - term(old, step, "optimizer states").bytes == 2 * LORA_7B * 2
    qlora = Setup(stack="hf-trainer", versions="peft=0.11.1", adaptation="qlora")
    assert "peft-adapter-base-dtype" not in [b["id"] for b in applied(L7, qlora)]  # uint8 base: adapters stay fp32


def test_torchtune_and_litgpt_lora_are_in_the_model_dtype():
    for stack in ("torchtune", "litgpt"):
        est = estimate(L7, Setup(stack=stack))
        assert term(est, "optimizer step", "LoRA adapters").bytes == LORA_7B * 2
    mixed = estimate(L7, Setup(stack="litgpt", precision="bf16-mixed"))
    assert term(mixed, "optimizer step", "LoRA adapters").bytes == LORA_7B * 4


@pytest.mark.parametrize(
    "stack, versions, foreach",
    [
        ("hf-trainer", "", False),  # transformers 5.24 + torch 2.13: adamw_torch_fused
        ("hf-trainer", "transformers=4.52.4", True),  # adamw_torch: foreach
        ("hf-trainer", "torch=2.7", True),  # transformers 5 keeps adamw_torch below torch 2.8
        ("hf-trainer", "transformers=4.52,torch=2.7", True),  # counted once
        ("litgpt", "", True),
        ("torchtune", "", False),  # its configs set fused: True
    ],
)
def test_foreach_adamw_scratch_by_stack_and_version(stack, versions, foreach):
    est = estimate(L7, Setup(stack=stack, versions=versions))
    scratch = [v for v in est.phases["optimizer step"] if v.name == "foreach AdamW scratch"]
    assert len(scratch) == int(foreach)
    if foreach:
        per = 2 if stack == "litgpt" else 4  # LitGPT's adapters are bf16
        assert scratch[0].bytes == LORA_7B * per


# ------------------------------------------------------------------------------------------------ Unsloth checkpointing
def test_unsloth_offloads_all_checkpoints_but_the_last():
    hf = estimate(L7, Setup(stack="hf-trainer"))
    us = estimate(L7, Setup(stack="unsloth", loss="full"))
    ckpt = 2 * 4096 * T  # one layer's bf16 input
    delta = 2 * 4096 * T * 2 - 31 * ckpt  # two bf16 staging buffers in, 31 checkpoints out
    assert delta == -486_539_264
    assert term(us, "forward", "saved activations").bytes - term(hf, "forward", "saved activations").bytes == delta
    assert us.host_offload_bytes - hf.host_offload_bytes == 31 * ckpt


OLD_HF = "transformers=4.48.1,trl=0.13.0,peft=0.13.2,torch=2.4.1"  # the fms-acceleration benchmark's freeze


def test_fsdp_holds_every_layer_input_and_its_gradient_on_transformers_before_4_52():
    """Llama 2 7B LoRA, FSDP x2, 2 x 2048 tokens on transformers 4.48: at the first layer's backward FSDP's reshard hook
    still holds the other 31 layers' checkpointed inputs and their gradients; one of those gradients is the one
    reaching layer 0, held anyway: 61 x (4096 hidden x 4096 tokens x 2 bytes) more."""
    setup = Setup(gpus=2, parallel="fsdp", micro_batch=2, versions=OLD_HF, stack="hf-trainer")
    held = term(estimate(L7, setup), "backward (layers)", "checkpoints held by FSDP")
    assert held.bytes == (31 + 30) * (4096 * 2 * T * 2) == 2_046_820_352
    assert held.category == "activations" and "[fsdp-frozen-unit-held-checkpoints]" in held.note
    assert "fsdp-frozen-unit-held-checkpoints" in [b["id"] for b in applied(L7, setup)]


@pytest.mark.parametrize(
    "change",
    [
        {"versions": "transformers=4.52.1"},  # GradientCheckpointingLayer: the checkpoint is inside the FSDP unit
        {"adaptation": "full"},  # trainable flat parameters: the ordinary post-backward hook frees them
        {"grad_ckpt": False},  # no recompute, no detached inputs
        {"parallel": "zero3"},  # DeepSpeed has no FSDP hook
        {"stack": "unsloth", "loss": "full"},  # its own checkpointing
        {"train": "grpo"},  # generation and training alternate: not priced
    ],
)
def test_nothing_is_held_outside_that_case(change):
    setup = Setup(gpus=2, parallel="fsdp", micro_batch=2, versions=OLD_HF, stack="hf-trainer").with_(**change)
    est = estimate(L7, setup)
    assert all(v.name != "checkpoints held by FSDP" for vals in est.phases.values() for v in vals)
    assert "fsdp-frozen-unit-held-checkpoints" not in [b["id"] for b in applied(L7, setup)]


def test_dpo_and_reward_hold_the_inputs_of_chosen_and_rejected():
    """They run 2 x micro_batch sequences through the trained model (estimators/kinds.py): twice SFT's held bytes."""
    sft = Setup(gpus=2, parallel="fsdp", micro_batch=2, versions=OLD_HF, stack="hf-trainer")
    held_sft = term(estimate(L7, sft), "backward (layers)", "checkpoints held by FSDP").bytes
    for kind in ("dpo", "reward"):
        assert term(estimate(L7, sft.with_(train=kind)), "backward (layers)", "checkpoints held by FSDP").bytes == 2 * held_sft


def test_the_held_inputs_move_the_peak_of_the_70b_fsdp_row_that_ran_out_of_memory():
    """fms-acceleration r0274: Llama-2-70B QLoRA, FSDP x2 on A100 80GB, 4 x 4096 tokens per GPU, out of memory.
    Without the held inputs the estimate was 46.0 GiB allocated (it "fitted"); its b2 sibling r0272 measured 43.48 GiB."""
    spec = resolve_model("llama-2-70b").spec
    base = Setup(
        adaptation="qlora",
        gpus=2,
        parallel="fsdp",
        seq_len=4096,
        attention="flash",
        lora_r=16,
        lora_alpha=16,
        lora_targets="q_proj,k_proj,v_proj,o_proj",
        lora_dropout=0.0,
        versions=OLD_HF,
        stack="trl",
        loss="full",
    )
    b2, b4 = estimate(spec, base.with_(micro_batch=2)), estimate(spec, base.with_(micro_batch=4))
    assert b2.peak_phase == b4.peak_phase == "backward (layers)"
    assert abs(b2.peak_allocated / 2**30 - 43.48) / 43.48 < 0.05
    assert b4.peak_allocated / 2**30 > 60 and not b4.fits(79.2 * 2**30)  # over the card


def test_estimate_stays_torch_free_with_a_stack():
    code = (
        "import sys\nfrom estimators import estimate\nfrom estimators.catalog import resolve_model\n"
        "from estimators.setup import Setup\nestimate(resolve_model('8b').spec, Setup(stack='unsloth', versions='peft=0.11'))\n"
        "print(sorted(m for m in ('torch', 'transformers', 'peft', 'unsloth', 'trl') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
