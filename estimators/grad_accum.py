"""Gradient accumulation (issue 13 item 4): the gradients of earlier micro-steps stay alive through the later ones.

With `--grad-accum k` an optimizer step runs k forward/backward micro-steps and then one optimizer step; the
gradients are freed only by `zero_grad(set_to_none=True)` after it. Micro-step 1 starts with no gradients, so its
phases are the ones `estimate()` builds. Micro-steps 2..k start with the full set of accumulated gradients resident:
  forward              every gradient (fp32 under bf16-mixed / fp32 master weights; bf16 for pure bf16 weights;
                       LoRA / QLoRA: the adapters' fp32 gradients only) next to the activations and the loss;
  backward phases      the gradients not yet produced in micro-step 1 at that point are already there, and the new
                       ones are added in place (autograd's AccumulateGrad adds into an existing `.grad` when grad mode
                       is off, torch/csrc/autograd/functions/accumulate_grad.h), so no second full set appears;
  optimizer step       unchanged (it runs once, after the last micro-step).
So each forward/backward phase gets a twin "..., micro-steps 2+" with the missing gradients added, and the peak is
the largest of all. Traced with `advisor measure` (the tracer runs the k micro-steps, advisor/measure/step.py):
llama-2-7b full bf16-mixed b1x2048 ga4 measures 127.36 GiB against 102.25 for ga1 (+25.10 GiB = every fp32
gradient), in backward.

Parallel layouts (estimators/parallel.py shards the term like any gradient, except):
  DDP, ZeRO-1          every rank holds all gradients between reductions (no_sync skips the all-reduce): full size.
  ZeRO-2 / ZeRO-3      DeepSpeed reduces every micro-step into the rank's fp32 gradient partition (it has no
                       no_sync for ZeRO >= 2): the partition, 1/N.
  FSDP                 accelerate's `accumulate()` wraps the non-final micro-steps in `FSDP.no_sync()` (the
                       default, GradientAccumulationPlugin(sync_each_batch=False)), and under no_sync FSDP keeps the
                       gradients *unsharded* until the final micro-step: full size on every rank.
"""

from __future__ import annotations

from . import terms as t

ACCUMULATED = "accumulated gradients"
SUFFIX = ", micro-steps 2+"


def accumulates(phase: str) -> bool:
    """Phases that run once per micro-step (the optimizer step, generation and scoring rounds do not)."""
    return phase.startswith("forward") or phase.startswith("backward") or phase == "reference forward"


def with_accumulation(phases: dict[str, list[t.TermValue]], grad_accum: int) -> dict[str, list[t.TermValue]]:
    """`phases` plus, for grad_accum > 1, the micro-step 2+ twin of each forward/backward phase: the same terms and
    the gradients that micro-step 1 had not produced yet at that point."""
    if grad_accum <= 1:
        return phases
    full = max((_gradients(values) for values in phases.values()), default=0)
    out = dict(phases)
    for name, values in phases.items():
        missing = full - _gradients(values)
        if accumulates(name) and missing > 0:
            out[name + SUFFIX] = list(values) + [
                t.TermValue(
                    ACCUMULATED, "gradients", missing, f"kept from micro-steps 1..{grad_accum - 1} until the optimizer step (zero_grad after it)"
                )
            ]
    return out


def _gradients(values) -> int:
    return sum(v.bytes for v in values if v.category == "gradients")
