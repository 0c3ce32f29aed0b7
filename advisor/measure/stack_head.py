"""Measure what the causal-LM loss of the INSTALLED transformers allocates, in bytes per logit (issue 15 §2).

Runs in any environment with torch and some transformers version (a venv under /tmp with an older transformers,
e.g. 4.44.2, installed next to this checkout): a one-layer Llama with the vocabulary and token count asked for,
real CPU tensors in pure bf16 (what the HF Trainer computes under bf16 autocast for these ops: the head's matmul in
bf16, the loss's explicit fp32 upcast, fp32 log-softmax), `model(input_ids, labels=labels)` then the loss's
backward with only the final norm trained (so backward runs through the head's input gradient, as for LoRA).
advisor.measure.tracker counts live storage op by op. Reported: the head window of the forward (from the lm_head
pre-hook to the loss) and the start of backward, each as its peak above the live bytes when it began, in
tokens x vocabulary units, which is what estimators/stack_terms.py prices per version.

    python -m advisor.measure.stack_head --vocab 32000 --tokens 2048 --out rows.jsonl
    python -m advisor.measure.stack_head --family gpt_bigcode --vocab 49280 --tokens 1024 --batch 2
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import sys
from importlib import metadata

import torch

from .tracker import MemoryTracker

SCHEMA = "advisor.stack-head/1"


def _build(family: str, vocab: int, tokens: int, hidden: int):
    """A one-layer model of `family` and its final norm (the only trained module)."""
    if family == "gpt_bigcode":  # SantaCoder / StarCoder: multi-query attention, its own causal-LM loss code
        from transformers import GPTBigCodeConfig, GPTBigCodeForCausalLM

        config = GPTBigCodeConfig(vocab_size=vocab, n_embd=hidden, n_inner=2 * hidden, n_layer=1, n_head=4, n_positions=tokens, multi_query=True)
        model = GPTBigCodeForCausalLM(config)
        return model, model.transformer.ln_f
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=tokens,
    )
    model = LlamaForCausalLM(config)
    return model, model.model.norm


FAMILIES = ("llama", "gpt_bigcode")


def measure(vocab: int, tokens: int, batch: int = 1, hidden: int = 256, family: str = "llama") -> dict:
    torch.manual_seed(0)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # build in bf16 directly (no .to(): TRACING.md item 1)
    try:
        model, norm = _build(family, vocab, tokens, hidden)
    finally:
        torch.set_default_dtype(old)
    model.train()
    for p in model.parameters():
        p.requires_grad_(False)
    for p in norm.parameters():  # backward runs through the frozen head's input gradient
        p.requires_grad_(True)
    ids = torch.randint(0, vocab, (batch, tokens))
    tracker = MemoryTracker()
    start = {}

    def head_pre(module, args):
        tracker.phase = "head"
        start["head"] = tracker.total

    hook = model.lm_head.register_forward_pre_hook(head_pre)
    for t in [*model.parameters(), *model.buffers(), ids]:  # existing storage: not part of any window
        tracker.track(t, "parameters")
    with tracker:
        tracker.phase = "forward"
        loss = model(input_ids=ids, labels=ids).loss
        tracker.phase = "backward"
        start["backward"] = tracker.total
        loss.backward()
    hook.remove()
    tv = batch * tokens * vocab
    head = tracker.phase_peaks["head"] - start["head"]
    backward = tracker.phase_peaks["backward"] - start["backward"]
    return {
        "schema": SCHEMA,
        "date": _dt.date.today().isoformat(),
        "device": "CPU, real tensors, pure bf16 (the head's ops as CUDA bf16 autocast runs them), 512-byte blocks",
        "versions": {"python": platform.python_version(), **{lib: _version(lib) for lib in ("torch", "transformers")}},
        "model": f"{family}, 1 layer, hidden {hidden}, vocab {vocab}, micro-batch {batch} x {tokens} tokens",
        "micro_batch": batch,
        "tokens": tokens,
        "vocab": vocab,
        "head_forward_bytes": head,
        "backward_start_bytes": backward,
        "head_forward_per_logit": round(head / tv, 3),
        "backward_start_per_logit": round(backward / tv, 3),
    }


def _version(lib: str) -> str:
    try:
        return metadata.version(lib)
    except metadata.PackageNotFoundError:
        return ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--tokens", type=int, default=2048)
    p.add_argument("--batch", type=int, default=1, help="sequences per micro-batch (the shifted copy exists only for 2 or more)")
    p.add_argument(
        "--family", choices=FAMILIES, default="llama", help="model family: its ForCausalLM's own loss code is what is measured (default: llama)"
    )
    p.add_argument("--out", help="append the row to this JSONL file")
    args = p.parse_args(argv)
    row = measure(args.vocab, args.tokens, args.batch, family=args.family)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:  # append only
            f.write(json.dumps(row, sort_keys=True) + "\n")
    json.dump(row, sys.stdout, indent=2, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
