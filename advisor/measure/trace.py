"""Trace mode: the training set-up at full size under FakeTensorMode (no weights, no memory), two optimizer steps,
the peak of live tensor storage per category and the phase it falls in. `real=True` runs the identical code on
real CPU tensors instead (tests compare the two on a tiny model)."""

from __future__ import annotations

import contextlib
import functools
import time
from dataclasses import dataclass, field

import torch

from estimators.effective import effective_setup
from estimators.setup import Setup

from . import grpo, prefs
from .attention import KERNEL, traced_attention
from .autocast import CudaAutocastOps, gpu_autocast_queries
from .build import build_model, sft_batch
from .hfmodel import attn_implementation, compute_dtype
from .optim import make_optimizer
from .step import train_step
from .tracker import CATEGORIES, MemoryTracker, module_forward_depth

TRACED_KINDS = ("sft", "reward", "dpo", "grpo")


@dataclass
class TraceResult:
    peak: int
    categories: dict[str, int]
    peak_phase: str
    phase_peaks: dict[str, int]
    attention: str
    quantization: str
    mode: str
    seconds: float
    trainable: int
    params: int
    notes: list[str] = field(default_factory=list)
    breakdown: list[tuple[int, int, str, str]] = field(default_factory=list)  # (bytes, count, category, what)
    events: int = 0  # the tracker event at which the peak was reached


def trace(spec, setup: Setup, *, real: bool = False, cpu_kernel: bool | None = None, steps: int = 2, describe=False) -> TraceResult:
    """Measure one set-up. `real`: real CPU tensors instead of fake ones. `cpu_kernel`: use the CPU flash kernel
    (default: only for real runs, which cannot run the CUDA kernel). `describe`: also return what is live at the
    peak, grouped (slower)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    setup = effective_setup(spec, setup)  # as the stack runs it on this model (e.g. no dropout on fused experts)
    if describe is True:  # the peak's event number first, then an identical run that copies the live set there
        first = trace(spec, setup, real=real, cpu_kernel=cpu_kernel, steps=steps)
        return trace(spec, setup, real=real, cpu_kernel=cpu_kernel, steps=steps, describe=first)
    if setup.train not in TRACED_KINDS:
        raise ValueError(f"advisor measure traces {', '.join(TRACED_KINDS)}; '{setup.train}' is not traced yet")
    if setup.train in ("dpo", "grpo") and setup.loss != "fused":
        raise ValueError(f"{setup.train.upper()}Trainer always scores through TRL's fused LM head: trace --train {setup.train} with --loss fused")
    if setup.train == "dpo" and setup.ref_model != "auto":
        raise ValueError("advisor measure traces DPO with --ref-model auto only")
    if setup.train == "grpo" and setup.ref_model == "precomputed":
        raise ValueError("GRPO has no precomputed reference: trace --ref-model auto, copy (beta 0.04) or none (beta 0)")
    if setup.world_size > 1 or setup.parallel != "none":
        raise ValueError("advisor measure traces single-GPU set-ups only")
    cpu_kernel = real if cpu_kernel is None else cpu_kernel
    t0 = time.time()
    fake = None if real else FakeTensorMode(allow_non_fake_inputs=True)
    cdtype = compute_dtype(setup)
    with traced_attention(cpu_kernel=cpu_kernel), gpu_autocast_queries(), _quiet():
        model, quant = build_model(spec, setup, fake_mode=fake)
        compute_loss, extra = _preference_step(spec, setup, fake)
        outer = fake if fake is not None else contextlib.nullcontext()
        with outer:
            optimizer = make_optimizer(model, setup)
            tracker = MemoryTracker()
            tracker.describe = bool(describe)
            if describe:
                tracker.snapshot_event = describe.events
                tracker.module_names = {id(m): n for n, m in model.named_modules()}
            if setup.adaptation == "qlora":
                from .qlora import emulated_ops

                tracker.emulated.update(emulated_ops())
            head: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
            scored: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
            if uses_fused_head(setup):
                from . import fused

                tracker.emulated.update(fused.emulated_ops())
                head = fused.cuda_path(tracker)
                if setup.train == "grpo":  # completion tokens only
                    scored = fused.selected(grpo.selected_positions(setup))
            if setup.train == "sft":
                batch = sft_batch(spec, setup)
            elif setup.train == "grpo":
                batch = {}  # each round makes its own (grpo.rollout)
            else:
                batch = prefs.batch(spec.vocab_size, setup.micro_batch, setup.seq_len)
            _register_existing(tracker, model, batch, extra)
            with tracker, module_forward_depth(tracker), CudaAutocastOps(), head, scored:
                _grad_hooks(model, tracker)
                for i in range(steps):
                    if setup.train == "grpo":
                        batch = grpo.rollout(model, extra[0] if extra else None, spec, setup, cdtype, tracker, generate=i == steps - 1)
                    train_step(model, optimizer, batch, cdtype, tracker, setup.grad_accum, loss=setup.loss, compute_loss=compute_loss)
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    kernel = KERNEL if attn_implementation(spec, setup) != "eager" else "eager (transformers eager_attention_forward)"
    if cpu_kernel and kernel.startswith("flash"):
        kernel = "flash (CPU kernel, aten._scaled_dot_product_flash_attention_for_cpu)"
    kind_note = {**prefs.NOTE, "grpo": grpo.NOTE}.get(setup.train)
    notes = [kind_note] if kind_note else []
    if uses_fused_head(setup):
        from .fused import NOTE

        notes.append(NOTE)
    return TraceResult(
        peak=tracker.peak,
        categories={k: tracker.peak_categories.get(k, 0) for k in CATEGORIES},
        peak_phase=tracker.peak_phase,
        phase_peaks=dict(tracker.phase_peaks),
        attention=kernel,
        quantization=quant,
        mode="real-cpu" if real else "fake",
        seconds=round(time.time() - t0, 1),
        trainable=trainable,
        params=params,
        breakdown=_group(tracker.peak_live) if describe else [],
        events=tracker.peak_event,
        notes=notes,
    )


def uses_fused_head(setup: Setup) -> bool:
    """SFT with --loss fused; DPO and GRPO always (their trainers patch the head); the reward model has no LM head."""
    return setup.train in ("dpo", "grpo") or (setup.train == "sft" and setup.loss == "fused")


def _preference_step(spec, setup: Setup, fake):
    """(compute_loss, extra models) of a reward, DPO or GRPO step (None, [] for SFT); DPO full fine-tuning, and GRPO's
    with beta > 0, load a frozen reference copy."""
    if setup.train == "sft":
        return None, []
    if setup.train == "reward":
        return prefs.reward_loss, []
    if setup.train == "grpo":
        ref = prefs.build_reference(spec, setup, fake) if setup.adaptation == "full" and grpo.beta(setup) else None
        return grpo.loss_fn(setup), [ref] if ref is not None else []
    ref = prefs.build_reference(spec, setup, fake) if setup.adaptation == "full" else None
    return functools.partial(prefs.dpo_loss, ref=ref), [ref] if ref is not None else []


def _group(live) -> list[tuple[int, int, str, str]]:
    import re

    groups: dict[tuple[str, str], list[int]] = {}
    for nbytes, cat, what in live:
        key = (cat, re.sub(r"\.\d+\.", ".*.", what))
        g = groups.setdefault(key, [0, 0])
        g[0] += nbytes
        g[1] += 1
    return sorted(((b, n, c, w) for (c, w), (b, n) in groups.items()), reverse=True)


def _register_existing(tracker: MemoryTracker, model, batch, extra=()) -> None:
    """Everything on the device before the first step: weights, buffers, 4-bit constants (of the model and of
    `extra` models: DPO's reference copy); the input batch."""
    seen = set()
    tensors = [t for m in (model, *extra) for t in list(m.parameters()) + list(m.buffers())]
    for t in tensors:
        tracker.track(t, "parameters")
        qs = getattr(t, "quant_state", None)
        if qs is not None and id(qs) not in seen:
            seen.add(id(qs))
            for x in _quant_tensors(qs):
                tracker.track(x, "parameters")
    for t in batch.values():
        tracker.track(t, "other")
    tracker.reset_peak()


def _quant_tensors(qs):
    out = [qs.absmax, getattr(qs, "code", None), getattr(qs, "offset", None)]
    if getattr(qs, "state2", None) is not None:
        out += [qs.state2.absmax, qs.state2.code]
    return [x for x in out if isinstance(x, torch.Tensor)]


def _grad_hooks(model, tracker: MemoryTracker) -> None:
    for p in model.parameters():
        if p.requires_grad:
            p.register_post_accumulate_grad_hook(lambda p: tracker.track(p.grad, "gradients"))


@contextlib.contextmanager
def _quiet():
    import logging
    import warnings

    from transformers.utils import logging as hf_logging

    old = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            hf_logging.set_verbosity(old)
