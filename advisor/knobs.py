"""The training knobs of a `Setup`, declared once: each becomes a command-line flag here and a what-if
control in the wizard. Defaults come from `Setup` itself so there is one source of truth."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, fields

from estimators.setup import (
    ADAPTATIONS,
    ATTENTIONS,
    LOSSES,
    OPTIMIZERS,
    PARALLEL,
    PRECISIONS,
    PUBLIC_NAMES,
    QUANT_TYPES,
    REF_MODELS,
    STACKS,
    TRAIN_KINDS,
    Setup,
)

DEFAULTS = {f.name: f.default for f in fields(Setup)}


@dataclass(frozen=True)
class Knob:
    field: str
    help: str
    kind: type = str
    choices: tuple[str, ...] = ()
    priced_only: bool = False  # changes what is priced, not what `advisor generate` writes (it offers no such flag)

    @property
    def flag(self) -> str:
        """The field's public name as a flag: --micro-batch; --method for the adaptation (estimators.setup.PUBLIC_NAMES)."""
        return "--" + PUBLIC_NAMES.get(self.field, self.field).replace("_", "-")

    def text(self, lang: str = "en") -> str:
        """The help in `lang`: Korean for the knobs the wizard shows (HELP_KO), English otherwise."""
        return HELP_KO.get(self.field, self.help) if lang == "ko" else self.help


KNOBS = (
    Knob("train", "training kind", choices=TRAIN_KINDS),
    Knob("adaptation", "adaptation: full fine-tuning, LoRA or QLoRA", choices=ADAPTATIONS),
    Knob("precision", "bf16/fp16 weights, -mixed for fp32 master weights under autocast, or fp32", choices=PRECISIONS),
    Knob("optimizer", "optimizer", choices=OPTIMIZERS),
    Knob("micro_batch", "sequences per GPU per step", int),
    Knob("seq_len", "tokens per sequence", int),
    Knob(
        "grad_accum",
        "gradient accumulation steps: micro-steps 2+ run with every gradient of the earlier ones resident "
        "(full fine-tuning: a full set of gradients on top of the forward; LoRA: the adapters' only)",
        int,
    ),
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
    Knob(
        "ref_model",
        "reference for dpo/ppo/grpo: auto/copy (a frozen copy for full, the adapter-disabled base for LoRA), precomputed (dpo log-probs), none (grpo, beta=0)",
        choices=REF_MODELS,
    ),
    Knob(
        "loss",
        "LM-head loss: fused = TRL's chunked log-probs (what generated scripts run), full = the HF causal-LM loss over B x S x V logits, chunked = the stack's chunked cross-entropy (Liger under the HF Trainer); under --stack other than trl, fused means the stack's own default",
        choices=LOSSES,
    ),
    Knob("num_generations", "GRPO completions per prompt (G)", int),
    Knob("response_len", "PPO/GRPO generated tokens per completion (part of --seq-len, which is prompt + response)", int),
    Knob(
        "stack",
        "the training stack to price (trl = what generated scripts run; axolotl and llama-factory run the HF Trainer); "
        "changes only what is priced, generated scripts still run trl",
        choices=STACKS,
        priced_only=True,
    ),
    Knob(
        "versions",
        "library versions to price, e.g. transformers=4.44,bitsandbytes=0.43; 'detect' reads this environment's "
        "installed versions (importlib.metadata, nothing imported), 'detect,torch=2.3' overrides one; empty = the pinned versions",
        priced_only=True,
    ),
    Knob("dora", "DoRA (peft LoraConfig use_dora): magnitude vectors and DoRA's extra activations", bool),
    Knob(
        "modules_to_save",
        "modules trained in full next to LoRA (peft LoraConfig modules_to_save): embed_tokens, lm_head or both, "
        "named as the model's family names them",
    ),
    Knob(
        "act_offload",
        "activation offloading: saved activations in host RAM (TRL activation_offloading: sft, reward and dpo; "
        "torchtune enable_activation_offloading)",
        bool,
    ),
    Knob(
        "optim_in_bwd",
        "optimizer step inside backward, each gradient freed at once (torchtune optimizer_in_bwd; priced only: "
        "generated scripts run TRL, which has no such option)",
        bool,
        priced_only=True,
    ),
    Knob("galore", "GaLore AdamW for full fine-tuning (HF optim galore_adamw, all-linear, rank 128; scripts need galore-torch)", bool),
    Knob(
        "galore_layerwise",
        "with --galore: the layer-wise variant (HF optim galore_adamw_layerwise), each parameter stepped "
        "in backward so one gradient exists at a time (one GPU, no gradient accumulation)",
        bool,
    ),
    Knob(
        "torch_compile",
        "torch.compile (Inductor) of the model (HF torch_compile): its partitioner recomputes elementwise ops in backward, so each layer saves less",
        bool,
    ),
    Knob(
        "llama_adapter",
        "LLaMA-Adapter (peft AdaptionPromptConfig) instead of LoRA adapters: trained prompts and zero-init gates in "
        "the top --adapter-layers attention layers of the frozen base (llama, mistral; single-GPU SFT; priced only: generated "
        "scripts train LoRA)",
        bool,
        priced_only=True,
    ),
    Knob("adapter_len", "LLaMA-Adapter prompt tokens per adapted layer (peft AdaptionPromptConfig adapter_len)", int, priced_only=True),
    Knob("adapter_layers", "LLaMA-Adapter: adapted layers from the top (adapter_layers; priced capped at the model's layers)", int, priced_only=True),
)


# The wizard's what-if knobs (advisor/tui/state.py WHATIF_KNOBS) in Korean; flags keep their English help.
HELP_KO = {
    "micro_batch": "GPU 하나가 한 스텝에 처리하는 시퀀스 수",
    "seq_len": "시퀀스당 토큰 수",
    "lora_r": "LoRA 랭크",
    "grad_ckpt": "그래디언트 체크포인팅 (기본: LoRA/QLoRA는 켬, Full은 끔)",
    "optimizer": "옵티마이저",
    "adaptation": "적응 방식: Full fine-tuning, LoRA 또는 QLoRA",
    "quant_type": "QLoRA 4비트 형식",
    "gpus": "노드당 GPU 수",
    "parallel": "데이터 병렬 구성",
}


def add_knob_flags(parser: argparse.ArgumentParser, only: tuple[str, ...] | None = None) -> None:
    group = parser.add_argument_group("training set-up")
    for knob in KNOBS:
        if only and knob.field not in only:
            continue
        default = DEFAULTS[knob.field]
        shown = "auto" if default is None else ("pinned" if default == "" else default)
        if knob.kind is bool:
            group.add_argument(
                knob.flag, dest=knob.field, action=argparse.BooleanOptionalAction, default=None, help=f"{knob.help} (default: {shown})"
            )
        else:
            group.add_argument(
                knob.flag, dest=knob.field, type=_typed(knob), default=None, metavar=_metavar(knob), help=f"{knob.help} (default: {shown})"
            )


def _metavar(knob: Knob) -> str:
    return "{" + ",".join(knob.choices) + "}" if knob.choices else knob.field.upper()


def _typed(knob: Knob):
    """Parse with a one-line error; choices are checked when the Setup is built, so the message lists them."""

    def parse(text: str):
        from estimators.gpu_names import shown

        if knob.kind is int:
            return _int_with_k(text, knob.flag)
        try:
            value = knob.kind(text)
        except ValueError:
            value = None
        if value is None or (knob.kind is float and not math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"expects a {knob.kind.__name__}, got {shown(text)}")
        return value

    return parse


_MAX_INT_FLAG = 2**31 - 1  # no count in a training set-up goes past int32 (PyTorch indexes tokens with it)


def _int_with_k(text: str, flag: str) -> int:
    """An integer flag: 8192, 8_192, or 8k / 32K (x 1024, as context lengths are said); one-line error otherwise."""
    from estimators.gpu_names import shown

    body = text.strip().lower()
    scale = 1024 if body.endswith("k") else 1
    body = body.removesuffix("k")
    digits = body.removeprefix("-").replace("_", "")  # a negative number passes, for Setup's "must be positive"
    if not (digits.isdigit() and digits.isascii()) or len(digits) > 12:
        raise argparse.ArgumentTypeError(f"expects a whole number like 8192 or 8k, got {shown(text)}")
    value = int(body) * scale
    if value > _MAX_INT_FLAG:
        raise argparse.ArgumentTypeError(f"{shown(text)} is too large (at most {_MAX_INT_FLAG:,})")
    return value


def setup_from_args(args: argparse.Namespace, base: Setup | None = None) -> Setup:
    """A Setup from parsed flags: flags given override `base` (or the defaults)."""
    changes = {k.field: getattr(args, k.field) for k in KNOBS if getattr(args, k.field, None) is not None}
    if "versions" in changes:  # "detect" is resolved here, so a Setup always carries explicit pkg=version items
        from estimators.versions import expand_versions

        changes["versions"] = expand_versions(changes["versions"])
    return (base or Setup()).with_(**changes)
