"""What each stack-, version- and option-dependent term (estimators/stack_terms.py, option_terms.py, galore_terms.py) changes on a
7B and an 8B run: the allocated peak of `advisor estimate` with and without it. Pure Python, no torch.

    .venv/bin/python bench/stack_effects.py            # table; recorded output in bench/stack_effects.txt
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from estimators import estimate  # noqa: E402
from estimators.catalog import resolve_model  # noqa: E402
from estimators.dtypes import GIB  # noqa: E402
from estimators.setup import Setup  # noqa: E402

# (what, model, base set-up, the set-up with the behaviour); base and variant differ only in what turns it on.
CASES = (
    ("transformers 4.44 HF loss, LoRA, batch 1", "7b", Setup(stack="hf-trainer"), Setup(stack="hf-trainer", versions="transformers=4.44.2")),
    (
        "transformers 4.44 HF loss, LoRA, batch 4",
        "7b",
        Setup(stack="hf-trainer", micro_batch=4),
        Setup(stack="hf-trainer", micro_batch=4, versions="transformers=4.44.2"),
    ),
    (
        "transformers 4.48 HF loss, LoRA, batch 4",
        "7b",
        Setup(stack="hf-trainer", micro_batch=4),
        Setup(stack="hf-trainer", micro_batch=4, versions="transformers=4.48.3"),
    ),
    (
        "transformers 4.44 HF loss, LoRA, batch 4, 8B",
        "8b",
        Setup(stack="hf-trainer", micro_batch=4),
        Setup(stack="hf-trainer", micro_batch=4, versions="transformers=4.44.2"),
    ),
    ("peft 0.11 bf16 adapters, LoRA", "7b", Setup(stack="hf-trainer"), Setup(stack="hf-trainer", versions="peft=0.11.1")),
    (
        "transformers 4.x foreach AdamW, full bf16",
        "7b",
        Setup(stack="hf-trainer", adaptation="full"),
        Setup(stack="hf-trainer", adaptation="full", versions="transformers=4.52.4"),
    ),
    ("transformers 4.x foreach AdamW, LoRA", "7b", Setup(stack="hf-trainer"), Setup(stack="hf-trainer", versions="transformers=4.52.4")),
    ("trl 1.14 (no fused head), LoRA, 8B", "8b", Setup(), Setup(versions="trl=1.14.2")),
    ("HF Trainer vs TRL fused head, LoRA, 8B", "8b", Setup(), Setup(stack="hf-trainer")),
    ("Liger chunked CE vs HF loss, LoRA, 8B", "8b", Setup(stack="hf-trainer"), Setup(stack="hf-trainer", loss="chunked")),
    ("torchtune (chunked CE, bf16 LoRA) vs HF Trainer, 8B", "8b", Setup(stack="hf-trainer"), Setup(stack="torchtune")),
    ("LitGPT (chunked CE, bf16 LoRA, foreach) vs HF Trainer, 8B", "8b", Setup(stack="hf-trainer"), Setup(stack="litgpt")),
    ("Unsloth (fused CE, offloaded checkpoints) vs HF Trainer, 8B", "8b", Setup(stack="hf-trainer"), Setup(stack="unsloth")),
    (
        "Unsloth vs HF Trainer, QLoRA, batch 4, --loss full (CE kernel, offloaded ckpts)",
        "7b",
        Setup(stack="hf-trainer", adaptation="qlora", micro_batch=4),
        Setup(stack="unsloth", adaptation="qlora", micro_batch=4, loss="full"),
    ),
    ("DoRA, LoRA all-linear", "7b", Setup(), Setup(dora=True)),
    ("DoRA, LoRA all-linear, no dropout", "7b", Setup(lora_dropout=0.0), Setup(lora_dropout=0.0, dora=True)),
    ("DoRA, QLoRA all-linear (read, not traced)", "7b", Setup(adaptation="qlora"), Setup(adaptation="qlora", dora=True)),
    ("modules_to_save embed_tokens,lm_head, LoRA", "7b", Setup(), Setup(modules_to_save="embed_tokens,lm_head")),
    ("modules_to_save embed_tokens,lm_head, LoRA, 8B", "8b", Setup(), Setup(modules_to_save="embed_tokens,lm_head")),
    (
        "activation offloading, torchtune LoRA, batch 8",
        "7b",
        Setup(stack="torchtune", micro_batch=8),
        Setup(stack="torchtune", micro_batch=8, act_offload=True),
    ),
    (
        "activation offloading, TRL LoRA, no checkpointing, batch 4",
        "7b",
        Setup(grad_ckpt=False, micro_batch=4),
        Setup(grad_ckpt=False, micro_batch=4, act_offload=True),
    ),
    ("GaLore AdamW (rank 128, all-linear), full bf16", "7b", Setup(adaptation="full"), Setup(adaptation="full", galore=True)),
    ("torch.compile, LoRA, no checkpointing", "7b", Setup(grad_ckpt=False), Setup(grad_ckpt=False, torch_compile=True)),
    ("torch.compile, LoRA, checkpointing, batch 4", "7b", Setup(micro_batch=4), Setup(micro_batch=4, torch_compile=True)),
    ("torch.compile, full bf16, 8B", "8b", Setup(adaptation="full"), Setup(adaptation="full", torch_compile=True)),
    (
        "GaLore layer-wise vs GaLore, full bf16",
        "7b",
        Setup(adaptation="full", galore=True),
        Setup(adaptation="full", galore=True, galore_layerwise=True),
    ),
    (
        "optimizer in backward, torchtune full bf16",
        "7b",
        Setup(stack="torchtune", adaptation="full", grad_ckpt=True),
        Setup(stack="torchtune", adaptation="full", grad_ckpt=True, optim_in_bwd=True),
    ),
)


def main() -> int:
    print(f"{'behaviour':80s} {'model':12s} {'without':>9s} {'with':>9s} {'change':>9s} {'largest phase change':>22s}")
    for what, key, base, variant in CASES:
        m = resolve_model(key).spec
        a, b = estimate(m, base), estimate(m, variant)
        pa, pb = a.peak_allocated / GIB, b.peak_allocated / GIB
        moved = {p: (sum(v.bytes for v in b.phases[p]) - sum(v.bytes for v in a.phases[p])) / GIB for p in a.phases if p in b.phases}
        phase = max(moved, key=lambda p: abs(moved[p]))
        print(f"{what:80s} {m.name:12s} {pa:8.2f}G {pb:8.2f}G {pb - pa:+8.2f}G {moved[phase]:+8.2f}G {phase}")
    print("(allocated peak, GiB; micro-batch 1 x 2048 tokens, bf16, AdamW, LoRA r16 all-linear unless stated;")
    print(" largest phase change: the phase the behaviour moves most, which need not be the peak)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
