"""The peak live bytes of one real training step on CPU, for checking another transformers version against the estimate.

The fake-tensor tracer (advisor/measure) runs the pinned stack only: it patches attention through the
transformers 5 interfaces. This script needs nothing of the project: it builds a small GPTBigCode model from a
config (no download), trains two steps with the model's own causal-LM loss, gradient checkpointing and AdamW, and
tracks every tensor storage created at the dispatcher (a TorchDispatchMode with weakref finalizers: a storage counts
from its first appearance until it is freed). Run it with the interpreter of a venv that has the transformers
version to check, e.g. one with transformers 4.48.1:

    /tmp/venv448/bin/python bench/real_step_peak.py --batch 2 --seq 512
    .venv/bin/python bench/real_step_peak.py --batch 4 --seq 512        # the pinned stack

and compare with `advisor estimate --model CONFIG --method full --micro-batch B --seq-len S --grad-ckpt --loss full
--no-packed [--versions transformers=4.48.1]` on the config it writes with --config-out. Results recorded in
bench/results/real_step_peak.txt.
"""

from __future__ import annotations

import argparse
import json
import weakref

import torch
import transformers
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from transformers import GPTBigCodeConfig, GPTBigCodeForCausalLM


class LiveBytes(TorchDispatchMode):
    """Bytes of the storages alive now, and the most seen at once (`peak`, in the phase named `phase`)."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: dict[int, int] = {}
        self.now = self.peak = 0
        self.phase = self.peak_phase = ""

    def _seen(self, t) -> None:
        if not isinstance(t, torch.Tensor):
            return
        storage = t.untyped_storage()
        key = storage.data_ptr()
        if key in self.sizes or storage.nbytes() == 0:
            return  # a view of a storage already counted
        self.sizes[key] = storage.nbytes()
        self.now += storage.nbytes()
        weakref.finalize(storage, self._freed, key)
        if self.now > self.peak:
            self.peak, self.peak_phase = self.now, self.phase

    def _freed(self, key: int) -> None:
        self.now -= self.sizes.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            self._seen(t)
        return out


def config(vocab: int, hidden: int, layers: int) -> GPTBigCodeConfig:
    return GPTBigCodeConfig(
        vocab_size=vocab, n_positions=2048, n_embd=hidden, n_layer=layers, n_head=4, multi_query=True, attn_pdrop=0.0, resid_pdrop=0.0, embd_pdrop=0.0
    )


def measure(cfg: GPTBigCodeConfig, batch: int, seq: int) -> dict:
    """Two steps; the peak of the second (the optimizer states exist, the gradients were set to None)."""
    torch.manual_seed(0)
    live = LiveBytes()
    with live:
        model = GPTBigCodeForCausalLM(cfg).to(torch.bfloat16)
        model.gradient_checkpointing_enable()
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
        ids = torch.randint(0, cfg.vocab_size, (batch, seq))
        for step in range(2):
            live.phase = f"forward {step}"
            loss = model(input_ids=ids, labels=ids).loss
            live.phase = f"backward {step}"
            loss.backward()
            live.phase = f"optimizer {step}"
            opt.step()
            opt.zero_grad(set_to_none=True)
            if step == 0:
                steady = live.now  # weights and AdamW states
                live.peak, live.peak_phase = live.now, ""
    logits_copy = batch * seq * cfg.vocab_size * 2  # one bf16 B x S x V tensor
    return {
        "transformers": transformers.__version__,
        "batch": batch,
        "seq": seq,
        "steady_bytes": steady,
        "peak_bytes": live.peak,
        "peak_phase": live.peak_phase,
        "above_steady_in_bf16_logits": round((live.peak - steady) / logits_copy, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: .venv/bin/python bench/real_step_peak.py --batch 2 --seq 512 --config-out /tmp/sc",
    )
    parser.add_argument("--batch", type=int, default=2, help="sequences per step (default 2)")
    parser.add_argument("--seq", type=int, default=512, help="tokens per sequence (default 512)")
    parser.add_argument("--vocab", type=int, default=49_280, help="vocabulary (default SantaCoder's 49,280)")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--config-out", help="also write the model's config.json into this folder (for advisor estimate --model)")
    args = parser.parse_args()
    cfg = config(args.vocab, args.hidden, args.layers)
    if args.config_out:
        cfg.save_pretrained(args.config_out)
    print(json.dumps(measure(cfg, args.batch, args.seq)))


if __name__ == "__main__":
    main()
