"""What "make it fit" (estimators/fit.py suggest_fixes) may change: the option table, one dimension per knob, and
KNOB_WEIGHTS, the knob-cost order of the fit search, which `advisor fit` and advise's sizing search
(advisor/advice/fitting.py knob_variants) both rank by. Kept apart from fit.py's search so that this judgement (what
each change costs) is stated once, in one short module.
"""

from __future__ import annotations

from dataclasses import dataclass

from .kind_rollout import grpo_divides_well
from .layouts import offload_option
from .model import ModelSpec
from .setup import Setup
from .terms import wrapped_parameters


# The changes "make it fit" may combine, one option per dimension, each with its cost in speed or quality and
# a weight that ranks it (higher = more painful). Weights are judgement, stated here once: memory-only
# knobs first, then the adaptation (§5: quality), then hardware (money).
@dataclass(frozen=True)
class Option:
    key: str
    label: str
    cost: str
    weight: float
    changes: dict


# What a memory-saving knob costs in speed or quality, the one ranking `advisor fit` and advise's sizing search both
# use (advisor/advice/fitting.py knob_variants). Paged 8-bit states ranks above checkpointing: checkpointing costs
# a known 20-30 % of each step, while states paged out of a full card cross PCIe every step.
KNOB_WEIGHTS = {"adamw8bit": 1.0, "grad_ckpt": 2.0, "paged_adamw8bit": 2.5}


def knob_weight(setup: Setup, base: Setup) -> float:
    """The cost of `setup`'s optimizer and checkpointing against `base`'s (KNOB_WEIGHTS)."""
    weight = KNOB_WEIGHTS.get(setup.optimizer, 0.0) if setup.optimizer != base.optimizer else 0.0
    return weight + (KNOB_WEIGHTS["grad_ckpt"] if setup.checkpointing and not base.checkpointing else 0.0)


def fix_options(model: ModelSpec, setup: Setup) -> list[list[Option]]:
    """The dimensions a fix combines, each a "keep" (key "") and the set-up's options in it."""
    keep = Option("", "", "", 0.0, {})
    dims: list[list[Option]] = []
    if setup.optimizer in ("adamw", "lion", "sgd_momentum"):
        dims.append(
            [
                keep,
                Option(
                    "adamw8bit",
                    "8-bit AdamW",
                    "optimizer states in 8 bits; quality on par in published runs",
                    KNOB_WEIGHTS["adamw8bit"],
                    {"optimizer": "adamw8bit"},
                ),
                Option(
                    "paged_adamw8bit",
                    "paged 8-bit AdamW",
                    "8-bit states that may page to host RAM; slower when they do",
                    KNOB_WEIGHTS["paged_adamw8bit"],
                    {"optimizer": "paged_adamw8bit"},
                ),
            ]
        )
    if setup.train == "grpo" and not grpo_divides_well(setup):
        # lcm(G, batch) completions per round: a micro-batch that divides well shrinks the KV cache first
        target = setup.micro_batch * setup.grad_accum * setup.world_size
        good = [
            b
            for b in range(setup.micro_batch, 0, -1)
            if grpo_divides_well(setup.with_(micro_batch=b, grad_accum=accum_for(target, b, setup.world_size)))
        ]
        if good:
            b, accum = good[0], accum_for(target, good[0], setup.world_size)
            dims.append(
                [
                    keep,
                    Option(
                        "grpo_round",
                        f"micro-batch {b} x gradient accumulation {accum} (its generation round divides num_generations {setup.num_generations})",
                        f"a generation round of fewer completions; effective batch {b * accum * setup.world_size}",
                        0.5,
                        {"micro_batch": b, "grad_accum": accum},
                    ),
                ]
            )
    precision = "fp16" if setup.precision.startswith("fp16") else "bf16"
    adaptations = [keep]
    if setup.adaptation == "full":
        adaptations.append(
            Option(
                "lora",
                "LoRA instead of full fine-tuning",
                "trains adapters only; slightly lower ceiling (§5)",
                4,
                {"adaptation": "lora", "precision": precision, "grad_ckpt": setup.checkpointing},
            )
        )
    if setup.adaptation in ("full", "lora"):
        weight = 6 if setup.adaptation == "full" else 3
        adaptations.append(
            Option(
                "qlora",
                "QLoRA (4-bit base weights)",
                "4-bit base; somewhat slower, small quality loss (§5)",
                weight,
                {"adaptation": "qlora", "precision": precision, "grad_ckpt": setup.checkpointing},
            )
        )
    if len(adaptations) > 1:
        dims.append(adaptations)
    if wrapped_parameters(model, setup):
        # LoRA on fused MoE experts builds a merged copy of each layer's experts (and of their gradient)
        dims.append(
            [
                keep,
                Option(
                    "lora_attention",
                    "LoRA on attention only (router and experts frozen)",
                    "adapts fewer weights; no merged expert copies",
                    2,
                    {"lora_targets": "attention"},
                ),
            ]
        )
    if setup.adaptation == "qlora" and setup.kbit_upcast and not setup.parallel.startswith("fsdp"):
        # peft's k-bit preparation upcasts every unquantised weight to fp32: little for a dense model, but
        # transformers 5 keeps MoE experts unquantised (raw parameters), so there it doubles most of the model
        dims.append(
            [
                keep,
                Option(
                    "no_kbit_upcast",
                    "keep unquantised weights in the compute dtype (no fp32 upcast)",
                    "skips peft's fp32 copies of norms, embeddings and unquantised experts; slightly less stable",
                    1,
                    {"kbit_upcast": False},
                ),
            ]
        )
    if not setup.offload_optimizer:
        label, cost, changes = offload_option(setup)  # estimators/parallel.py: a layout that can offload
        dims.append([keep, Option("offload_optimizer", label, cost, 5, changes)])
    if not setup.checkpointing:  # last: its change must win over the adaptation's "keep checkpointing as it is"
        dims.append(
            [
                keep,
                Option(
                    "grad_ckpt",
                    "gradient checkpointing on",
                    "about 20-30 % slower steps (the forward is recomputed)",
                    KNOB_WEIGHTS["grad_ckpt"],
                    {"grad_ckpt": True},
                ),
            ]
        )
    if setup.world_size == 1:
        dims.append(
            [keep, Option("more_gpus", "2 GPUs with FSDP full shard", "a second GPU; communication overhead", 6, {"gpus": 2, "parallel": "fsdp"})]
        )
    return dims


def accum_for(target: int, micro_batch: int, world: int) -> int:
    """Gradient accumulation that brings micro_batch x world up to the target effective batch (at least 1)."""
    return max(1, -(-target // (micro_batch * world)))
