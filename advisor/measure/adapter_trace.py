"""Trace LLaMA-Adapter (peft AdaptionPromptConfig, `--llama-adapter`) with the project's tracer: the training step at
full size under FakeTensorMode with CUDA semantics (advisor/measure/trace.py), the model built as for LoRA but wrapped
by peft's AdaptionPrompt instead of a LoraConfig, so every other piece (attention kernel, CUDA autocast lists,
TRL's fused head, checkpointing with input grads, the fused AdamW) is the tracer's own.

    .venv/bin/python -m advisor.measure.adapter_trace --model 7b [--no-grad-ckpt] [--seq-len 2048] [--json]

On --stack hf-trainer (the default here): the HF Trainer with the model's own causal-LM loss, which trains it; TRL >= 1.15
cannot (estimators/adapter_prompt_terms.check_stack).

Prints the traced peak next to `estimate()`'s (estimators/adapter_prompt_terms.py). `advisor measure --llama-adapter`
refuses (build.py builds LoRA); this module is its LLaMA-Adapter entry, and its rows are not written to traces.jsonl
(tests/test_llama_adapter.py compares them with the estimate).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any

from estimators.setup import Setup


@contextlib.contextmanager
def adaption_prompt_build(setup: Setup):
    """trace.build_model for `setup` (llama_adapter on): build.build_model's LoRA set-up with peft's get_peft_model
    swapped for one that wraps the model in AdaptionPromptConfig(adapter_len, adapter_layers) instead."""
    import peft
    from peft import AdaptionPromptConfig

    from . import build, trace

    real_get_peft_model = peft.get_peft_model
    real_build = trace.build_model
    layers_cap, adapter_len = setup.adapter_layers, setup.adapter_len

    def get_peft_model(model, _lora_config, *args, **kwargs):
        layers = min(layers_cap, model.config.num_hidden_layers)  # as estimators/adapter_prompt_terms.adapted_layers
        config = AdaptionPromptConfig(task_type="CAUSAL_LM", adapter_len=adapter_len, adapter_layers=layers)
        return real_get_peft_model(model, config)

    def build_model(spec, setup: Setup, fake_mode=None, device: str = "cpu") -> tuple[Any, str]:
        return build.build_model(spec, setup.with_(llama_adapter=False), fake_mode=fake_mode, device=device)

    peft.get_peft_model, trace.build_model = get_peft_model, build_model
    try:
        yield
    finally:
        peft.get_peft_model, trace.build_model = real_get_peft_model, real_build


def trace_adapter(spec, setup: Setup, steps: int = 2):
    """The trace.TraceResult of `setup` (llama_adapter on) on `spec`."""
    from .trace import trace

    if not setup.llama_adapter:
        raise ValueError("adapter_trace traces --llama-adapter set-ups; use advisor measure for the others")
    with adaption_prompt_build(setup):
        return trace(spec, setup, steps=steps)


def main(argv=None) -> int:
    from estimators import estimate
    from estimators.catalog import resolve_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="7b")
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--micro-batch", type=int, default=1)
    ap.add_argument("--adapter-len", type=int, default=10)
    ap.add_argument("--adapter-layers", type=int, default=30)
    ap.add_argument("--grad-ckpt", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--stack", default="hf-trainer", help="an HF Trainer stack (TRL >= 1.15 cannot train it: its fused head)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    spec = resolve_model(args.model).spec
    setup = Setup(
        llama_adapter=True,
        seq_len=args.seq_len,
        micro_batch=args.micro_batch,
        adapter_len=args.adapter_len,
        adapter_layers=args.adapter_layers,
        grad_ckpt=args.grad_ckpt,
        stack=args.stack,
    )
    result = trace_adapter(spec, setup)
    est = estimate(spec, setup)
    row = {
        "model": args.model,
        "setup": {k: v for k, v in setup.public_dict().items() if v != Setup().public_dict()[k]},
        "traced": result.peak,
        "traced_phase": result.peak_phase,
        "categories": result.categories,
        "trainable": result.trainable,
        "estimate": est.peak_allocated,
        "estimate_phase": est.peak_phase,
        "estimate_trainable": est.trainable,
        "error": round((est.peak_allocated - result.peak) / result.peak, 4),
        "seconds": result.seconds,
        "traced_phases": result.phase_peaks,
        "estimate_phases": {name: sum(v.bytes for v in values) for name, values in est.phases.items()},
    }
    if args.json:
        json.dump(row, sys.stdout, sort_keys=True)
        print()
        return 0
    gib = 2**30
    print(
        f"{args.model} {row['setup']}: traced {result.peak / gib:.3f} GiB in {result.peak_phase}, estimate "
        f"{est.peak_allocated / gib:.3f} GiB in {est.peak_phase} ({100 * row['error']:+.2f} %); trainable {result.trainable} "
        f"(estimate {est.trainable}); {result.seconds} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
