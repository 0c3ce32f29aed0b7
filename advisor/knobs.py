"""The training knobs of a `Setup`, declared once: each becomes a command-line flag here and a what-if
control in the wizard. Defaults come from `Setup` itself so there is one source of truth."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields

from estimators.setup import ATTENTIONS, LOSSES, METHODS, OPTIMIZERS, PARALLEL, PRECISIONS, QUANT_TYPES, REF_MODELS, TRAIN_KINDS, Setup

DEFAULTS = {f.name: f.default for f in fields(Setup)}


@dataclass(frozen=True)
class Knob:
    field: str
    help: str
    kind: type = str
    choices: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return "--" + self.field.replace("_", "-")


KNOBS = (
    Knob("train", "training kind", choices=TRAIN_KINDS),
    Knob("method", "adaptation: full fine-tuning, LoRA or QLoRA", choices=METHODS),
    Knob("precision", "bf16/fp16 weights, -mixed for fp32 master weights under autocast, or fp32", choices=PRECISIONS),
    Knob("optimizer", "optimizer", choices=OPTIMIZERS),
    Knob("micro_batch", "sequences per GPU per step", int),
    Knob("seq_len", "tokens per sequence", int),
    Knob("grad_accum", "gradient accumulation steps (no memory cost)", int),
    Knob("grad_ckpt", "gradient checkpointing (default: on for LoRA/QLoRA, off for full)", bool),
    Knob("attention", "attention kernel: sdpa/flash keep no S x S scores, eager does", choices=ATTENTIONS),
    Knob("lora_r", "LoRA rank", int),
    Knob("lora_alpha", "LoRA alpha", int),
    Knob("lora_targets", "LoRA targets: qv, attention, all-linear, or names like q_proj,v_proj"),
    Knob("lora_dropout", "LoRA dropout probability", float),
    Knob("quant_type", "QLoRA 4-bit type", choices=QUANT_TYPES),
    Knob("double_quant", "QLoRA double quantisation of the constants", bool),
    Knob("kbit_upcast", "QLoRA: upcast non-quantised weights to fp32 (prepare_model_for_kbit_training)", bool),
    Knob("packed", "pack sequences to the full length (else padded to it)", bool),
    Knob("gpus", "GPUs per node", int),
    Knob("nodes", "nodes", int),
    Knob("parallel", "data-parallel layout", choices=PARALLEL),
    Knob("offload_optimizer", "optimizer states (and ZeRO's fp32 masters/gradients) in host RAM: ZeRO-Offload, or FSDP with --offload-params", bool),
    Knob("offload_params", "weights in host RAM (ZeRO-3 offload_param, FSDP CPUOffload)", bool),
    Knob("ref_model", "reference for dpo/ppo/grpo: auto/copy (a frozen copy for full, the adapter-disabled base for LoRA), precomputed (dpo log-probs), none (grpo, beta=0)", choices=REF_MODELS),
    Knob("loss", "LM-head loss: fused = TRL's chunked log-probs (what generated scripts run), full = the HF causal-LM loss over B x S x V logits", choices=LOSSES),
    Knob("num_generations", "GRPO completions per prompt (G)", int),
    Knob("response_len", "PPO/GRPO generated tokens per completion (part of --seq-len, which is prompt + response)", int),
)


def add_knob_flags(parser: argparse.ArgumentParser, only: tuple[str, ...] | None = None) -> None:
    group = parser.add_argument_group("training set-up")
    for knob in KNOBS:
        if only and knob.field not in only:
            continue
        default = DEFAULTS[knob.field]
        shown = "auto" if default is None else default
        if knob.kind is bool:
            group.add_argument(knob.flag, dest=knob.field, action=argparse.BooleanOptionalAction, default=None, help=f"{knob.help} (default: {shown})")
        else:
            group.add_argument(
                knob.flag, dest=knob.field, type=_typed(knob), default=None, metavar=_metavar(knob), help=f"{knob.help} (default: {shown})"
            )


def _metavar(knob: Knob) -> str:
    return "{" + ",".join(knob.choices) + "}" if knob.choices else knob.field.upper()


def _typed(knob: Knob):
    """Parse with a one-line error; choices are checked by Setup.validated so the message lists them."""

    def parse(text: str):
        try:
            return knob.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{knob.flag} expects a {knob.kind.__name__}, got '{text}'") from None

    return parse


def setup_from_args(args: argparse.Namespace, base: Setup | None = None) -> Setup:
    """A Setup from parsed flags: flags given override `base` (or the defaults)."""
    changes = {k.field: getattr(args, k.field) for k in KNOBS if getattr(args, k.field, None) is not None}
    return (base or Setup()).with_(**changes).validated()
