"""One training step as the Hugging Face Trainer (with accelerate) runs it, with the memory tracker's phases.

forward   accelerate wraps model.forward in autocast (bf16/fp16) and converts the outputs to fp32
          (`convert_outputs_to_fp32`). loss "full": the model computes the causal-LM loss itself (labels
          passed, logits upcast to fp32 in `ForCausalLMLoss`). loss "fused": TRL's SFTTrainer.compute_loss,
          `model(**inputs, fused_lm_head=True)` through the head `add_fused_lm_head` patched in (fused.py), the
          loss summed from the per-token log-probs. The Trainer keeps only the loss: outputs are dropped before
          backward (TRACING.md, item 5).
backward  loss.backward() outside autocast, then clip_grad_norm_(max_norm=1.0), the Trainer default.
optimizer step  optimizer.step(), then zero_grad(set_to_none=True).
"""

from __future__ import annotations

import torch

from .autocast import autocast_region


def _to_fp32(obj):
    """accelerate.utils.convert_to_fp32: fp16/bf16 tensors in the outputs become fp32 copies."""
    if isinstance(obj, torch.Tensor):
        return obj.float() if obj.dtype in (torch.float16, torch.bfloat16) else obj
    if isinstance(obj, dict):
        return type(obj)(**{k: _to_fp32(v) for k, v in obj.items()}) if hasattr(obj, "to_tuple") else {k: _to_fp32(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_fp32(v) for v in obj)
    return obj


def forward_loss(model, batch: dict, cdtype, device_type: str = "cpu", loss: str = "full") -> torch.Tensor:
    fused = loss == "fused"
    with autocast_region(cdtype, device_type):
        outputs = model(**batch, fused_lm_head=True) if fused else model(**batch)
    outputs = _to_fp32(outputs)
    if fused:
        from .fused import sft_loss

        value = sft_loss(outputs)
    else:
        value = outputs["loss"]
    del outputs
    return value


def train_step(
    model,
    optimizer,
    batch: dict,
    cdtype,
    tracker=None,
    grad_accum: int = 1,
    phase=None,
    device_type: str = "cpu",
    loss: str = "full",
    compute_loss=None,
) -> None:
    """One optimizer step over `grad_accum` micro-batches (the same batch reused). `phase(name)` is a context
    manager around each phase (default: the tracker's). `compute_loss(model, batch, cdtype, device_type)`: another
    trainer's compute_loss (prefs.py) instead of the SFT one."""
    if phase is None:
        phase = tracker.in_phase if tracker is not None else _no_phase
    params = [p for p in model.parameters() if p.requires_grad]
    for _ in range(grad_accum):
        with phase("forward"):
            if compute_loss is not None:
                value = compute_loss(model, batch, cdtype, device_type)
            else:
                value = forward_loss(model, batch, cdtype, device_type, loss)
        with phase("backward"):
            (value / grad_accum).backward()
            del value
    with phase("backward"):
        torch.nn.utils.clip_grad_norm_(params, 1.0)
    with phase("optimizer step"):
        optimizer.step()
        if tracker is not None:
            states = [t for s in optimizer.state.values() for t in s.values() if isinstance(t, torch.Tensor)]
            tracker.relabel(states, "optimizer")
            tracker.retag_optimizer_scratch(states)
        optimizer.zero_grad(set_to_none=True)


class _no_phase:
    def __init__(self, name):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
