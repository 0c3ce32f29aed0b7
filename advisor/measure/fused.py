"""TRL's fused LM head (`Setup.loss == "fused"`) as the generated scripts run it on a CUDA GPU with Triton.

trl 1.16's SFTTrainer patches the model with `trl.trainer.utils.add_fused_lm_head(outputs=("log_probs", "entropy",
"is_top1"))` and its `compute_loss` calls `model(**inputs, fused_lm_head=True)`: the backbone, then
`ChunkedLogProbFunction` (trl/kernels/chunked_logprob.py) over [4096 tokens x 32768 vocabulary] tiles of logits in
the compute dtype, never the B x S x V logits. The trace runs TRL's own code on the traced model; only what differs
between a CPU and a CUDA device with Triton is replaced, by its CUDA allocation pattern:

- `_use_triton(device)` answers True (in trl.trainer.utils and trl.kernels.chunked_logprob), so the head takes the
  *compact* path a GPU takes: `hidden_states[mask]` / `labels[mask]` copies of the positions with a label, outputs
  put back with `masked_scatter`. (On a device without Triton TRL scores every position through a view or reshape
  instead; the compact path costs one more N x H copy in the forward when the batch has one row.)
- The Triton fold kernels `_forward_kernel` / `_backward_kernel` write into buffers that exist already and allocate
  nothing: they run as TRL's torch fallbacks (`_forward_tile` / `_backward_tile`, same arguments, same values) with
  the tracker paused, so their tile-sized fp32 temporaries are not counted.
- `_addmm_fp32` is `torch.addmm(..., out_dtype=float32, out=acc)` on CUDA (no fp32 copies of the operands); it runs
  the CPU fallback with the tracker paused.
- Under fake tensors the boolean-mask `index` and `masked_select` have data-dependent shapes FakeTensorMode refuses;
  they are replaced by their outputs' allocation, every label valid (the traced batch has no -100 label) unless
  `selected` names how many positions a mask of that shape selects (GRPO: the completion tokens). Real CPU runs
  (tests) execute them as they are.
"""

from __future__ import annotations

import contextlib
import types

import torch

# trl/trainer/sft_trainer.py: add_fused_lm_head(..., outputs=("log_probs", "entropy", "is_top1"))
SFT_OUTPUTS = ("log_probs", "entropy", "is_top1")
NOTE = (
    "fused LM head: TRL's add_fused_lm_head + ChunkedLogProbFunction on its CUDA (Triton) path: compact "
    "hidden_states[mask] scoring, Triton fold kernels and fp32-out addmm allocation-free; every label valid"
)


def add_head(model, outputs=SFT_OUTPUTS) -> None:
    """What SFTTrainer.__init__ (and DPOTrainer's, with its outputs) does: patch the (PEFT-unwrapped) model's forward with the fused head."""
    from trl.trainer.utils import add_fused_lm_head

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    add_fused_lm_head(base, outputs=outputs)


def sft_loss(outputs) -> torch.Tensor:
    """SFTTrainer.compute_loss (loss_type "nll", no label smoothing, no compute_loss_func) from the fused outputs,
    with its metrics' reductions (the `.item()` calls, which fake tensors cannot answer, left out)."""
    per_token_loss = -outputs["log_probs"]
    num_tokens = outputs["label_mask"].sum()
    loss = per_token_loss.sum() / torch.as_tensor(num_tokens).clamp(min=1)
    outputs["label_mask"].sum()
    outputs["entropy"].detach().sum()
    outputs["is_top1"].sum()
    return loss


class _Launch:
    """`kernel[grid](*args)` for a Triton kernel: TRL's torch fallback of the same signature, untracked."""

    def __init__(self, fallback, tracker):
        self.fallback, self.tracker = fallback, tracker

    def __getitem__(self, grid):
        def run(*args, **kwargs):
            with self.tracker.untracked():
                self.fallback(*args, **kwargs)

        return run


@contextlib.contextmanager
def cuda_path(tracker):
    """Patch TRL so the fused head runs its CUDA/Triton path on CPU tensors, allocation for allocation."""
    import trl.kernels.chunked_logprob as ck
    import trl.trainer.utils as tu

    saved = {(ck, name): getattr(ck, name, None) for name in ("_use_triton", "_forward_kernel", "_backward_kernel", "_addmm_fp32", "triton")}
    saved[(tu, "_use_triton")] = tu._use_triton
    addmm = ck._addmm_fp32

    def addmm_fp32(acc, a, b):
        with tracker.untracked():
            addmm(acc, a, b)

    try:
        tu._use_triton = ck._use_triton = lambda device: True
        ck._forward_kernel = _Launch(ck._forward_tile, tracker)
        ck._backward_kernel = _Launch(ck._backward_tile, tracker)
        ck._addmm_fp32 = addmm_fp32
        if getattr(ck, "triton", None) is None:
            ck.triton = types.SimpleNamespace(cdiv=lambda a, b: -(-a // b))
        yield
    finally:
        for (mod, name), value in saved.items():
            if value is None:
                if hasattr(mod, name):
                    delattr(mod, name)
            else:
                setattr(mod, name, value)


_SELECTED: dict[tuple, int] = {}  # boolean-mask shape -> positions it selects under fake tensors (default: all)


@contextlib.contextmanager
def selected(counts: dict[tuple, int]):
    """While active, a fake boolean mask of shape `shape` selects `counts[shape]` positions (GRPO's label mask:
    micro_batch x response_len completion tokens of micro_batch x (seq_len - 1) positions)."""
    saved = dict(_SELECTED)
    _SELECTED.update(counts)
    try:
        yield
    finally:
        _SELECTED.clear()
        _SELECTED.update(saved)


def _is_fake(t) -> bool:
    from torch._subclasses.fake_tensor import FakeTensor

    return isinstance(t, FakeTensor)


def _index(tracker, self, indices):
    """aten.index.Tensor: a boolean mask over the leading dims selects mask.numel() rows under fake tensors."""
    if _is_fake(self) and len(indices) == 1 and indices[0] is not None and indices[0].dtype == torch.bool:
        mask = indices[0]
        return self.new_empty((_SELECTED.get(tuple(mask.shape), mask.numel()), *self.shape[mask.dim() :]))
    return torch.ops.aten.index.Tensor(self, indices)


def _masked_select(tracker, self, mask):
    """aten.masked_select: every element (or `selected`'s count) selected under fake tensors."""
    if _is_fake(self):
        shape = torch.broadcast_shapes(self.shape, mask.shape)
        return self.new_empty((_SELECTED.get(tuple(shape), shape.numel()),))
    return torch.ops.aten.masked_select.default(self, mask)


def emulated_ops() -> dict:
    return {torch.ops.aten.index.Tensor: _index, torch.ops.aten.masked_select.default: _masked_select}
