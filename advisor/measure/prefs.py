"""Preference training steps (`--train reward`, `--train dpo`) as trl 1.16's trainers run them.

reward  RewardTrainer.compute_loss: `model(**inputs)` on chosen + rejected concatenated (2 x micro_batch
        sequences) of an AutoModelForSequenceClassification(num_labels=1) (build.py), the scalar rewards split
        with `torch.chunk`, Bradley-Terry loss -logsigmoid(chosen - rejected).mean(), then its no_grad metrics.
dpo     DPOTrainer._compute_loss: the policy on chosen + rejected with the fused LM head (`fused_lm_head=True`,
        outputs log_probs/entropy/mean_logits/is_top1), per-sequence log-prob sums; then the reference under
        torch.no_grad() with gradient checkpointing switched off (trl's `disable_gradient_checkpointing`): LoRA
        (`ref_model=None`): the same model inside trl's `use_adapter(model, None)` (peft `disable_adapter()`); full:
        a frozen copy in the policy's dtype with the default fused head (log_probs), evaluation mode. The sigmoid
        loss, then the metric reductions (`.item()` left out). Both models' forwards run inside accelerate's
        autocast with fp32 outputs (`prepare_model` wraps the reference too, evaluation_mode or not).
Every position is a completion token (completion_mask all ones): the fused head's compact path scores all of
them, the upper bound kinds.py prices. No attention_mask is passed (no padding: the same kernels).
Both trainers disable dropout (`disable_dropout=True` by default), LoRA dropout included (build.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .autocast import autocast_region
from .step import _to_fp32

# trl/trainer/dpo_trainer.py: add_fused_lm_head(..., outputs=("log_probs", "entropy", "mean_logits", "is_top1"))
DPO_OUTPUTS = ("log_probs", "entropy", "mean_logits", "is_top1")
DPO_BETA = 0.1  # DPOConfig.beta default (memory-neutral)
NOTE = {
    "reward": "RewardTrainer step: seq-cls model (num_labels=1) on chosen + rejected (2 x micro-batch sequences), "
    "Bradley-Terry loss; dropout disabled",
    "dpo": "DPOTrainer step: policy on chosen + rejected (2 x micro-batch sequences) with the fused head, then the "
    "no_grad reference forward (LoRA: adapter disabled; full: frozen copy), sigmoid loss; dropout disabled",
}


def batch(vocab: int, micro_batch: int, seq_len: int) -> dict:
    ids = torch.randint(0, vocab, (2 * micro_batch, seq_len))
    return {"input_ids": ids, "labels": ids.clone()}


def reward_loss(model, batch: dict, cdtype, device_type: str = "cpu") -> torch.Tensor:
    with autocast_region(cdtype, device_type):
        outputs = model(input_ids=batch["input_ids"], use_cache=False)
    outputs = _to_fp32(outputs)
    rewards_chosen, rewards_rejected = torch.chunk(outputs["logits"].squeeze(-1), chunks=2)
    loss = -F.logsigmoid(rewards_chosen - rewards_rejected).mean()
    with torch.no_grad():
        logits = outputs["logits"]
        logits.min(), logits.mean(), logits.max()
        (rewards_chosen > rewards_rejected).float().mean()
        (rewards_chosen - rewards_rejected).mean()
    del outputs
    return loss


def _fused(model, batch: dict, cdtype, device_type: str):
    with autocast_region(cdtype, device_type):
        out = model(input_ids=batch["input_ids"], use_cache=False, labels=batch["labels"], fused_lm_head=True)
    return _to_fp32(out)


def dpo_loss(model, batch: dict, cdtype, device_type: str = "cpu", ref=None) -> torch.Tensor:
    from trl.models.utils import disable_gradient_checkpointing
    from trl.trainer.utils import use_adapter

    completion_mask = torch.ones_like(batch["input_ids"])
    shift_mask = completion_mask[..., 1:]
    seq_len = shift_mask.size(1)
    outputs = _fused(model, batch, cdtype, device_type)
    per_token_logps = outputs["log_probs"][:, -seq_len:]
    logps = per_token_logps.sum(dim=1)
    chosen_logps, rejected_logps = logps.chunk(2, dim=0)
    gc_kwargs = getattr(model, "advisor_gc_kwargs", None)
    with torch.no_grad(), disable_gradient_checkpointing(model, gc_kwargs):
        if ref is None:
            with use_adapter(model, adapter_name=None):
                ref_outputs = _fused(model, batch, cdtype, device_type)
        else:
            ref_outputs = _fused(ref, batch, cdtype, device_type)
    ref_logps = ref_outputs["log_probs"][:, -seq_len:].sum(dim=1)
    del ref_outputs
    ref_chosen, ref_rejected = ref_logps.chunk(2, dim=0)
    chosen_logratios, rejected_logratios = chosen_logps - ref_chosen, rejected_logps - ref_rejected
    loss = (-F.logsigmoid(DPO_BETA * (chosen_logratios - rejected_logratios))).mean()
    # metrics (DPOTrainer._compute_loss), without the .item() calls
    (outputs["entropy"][:, -seq_len:].detach() * shift_mask).sum()
    chosen_mean_logits, _ = outputs["mean_logits"][:, -seq_len:].chunk(2, dim=0)
    chosen_mask, _ = shift_mask.chunk(2, dim=0)
    chosen_mean_logits[chosen_mask.bool()].sum()
    chosen_is_top1, _ = outputs["is_top1"][:, -seq_len:].chunk(2, dim=0)
    (chosen_is_top1 & chosen_mask.bool()).sum()
    (DPO_BETA * chosen_logratios.detach() > DPO_BETA * rejected_logratios.detach()).float().mean()
    del outputs
    return loss


def build_reference(spec, setup, fake_mode=None):
    """DPO full fine-tuning, ref_model=None: TRL loads a second copy of the model in the policy's dtype
    (`ref_model_init_kwargs.setdefault("dtype", self.model.dtype)`), adds the default fused head, disables its
    dropout; accelerate prepares it in evaluation mode (frozen: no gradients)."""
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head, disable_dropout_in_model

    from .hfmodel import attn_implementation, hf_config, reset_rotary, retie, storage_dtype

    config = hf_config(spec, setup)
    with torch.device("meta" if fake_mode is not None else "cpu"):
        ref = AutoModelForCausalLM.from_config(config, dtype=storage_dtype(setup), attn_implementation=attn_implementation(spec, setup))
    if fake_mode is not None:
        with fake_mode:
            ref.to_empty(device="cpu")
            retie(ref, spec)
            reset_rotary(ref)
    else:
        retie(ref, spec)
    ref.requires_grad_(False)
    add_fused_lm_head(ref)
    disable_dropout_in_model(ref)
    ref.eval()
    return ref
