"""LoRA targets and modules_to_save resolved to a model family's module names: the presets "qv" and "attention" (by
role: GPT-NeoX's fused query_key_value, GPT-2's c_attn and attn.c_proj, BERT's query / value), the user's own list as
given, and the modules_to_save roles (GPT-NeoX's embed_in for embed_tokens). The estimate, the generated script's
LoraConfig and `advisor measure` read this one resolution, so what is priced is what peft wraps."""

from __future__ import annotations

from .errors import EstimateError
from .model import ModelSpec
from .params import attention_targets, embedding_modules, layer_linears, query_value_targets
from .setup import LORA_PRESETS, Setup, save_module_names

# The presets whose module names depend on the model family.
FAMILY_PRESETS = {"qv": query_value_targets, "attention": attention_targets}


def lora_target_names(m: ModelSpec | None, setup: Setup) -> tuple[str, ...]:
    """The target_modules peft gets for `m` (() means "all-linear"): a preset of FAMILY_PRESETS resolved to the family's
    module names (params.query_value_targets, attention_targets), or the user's comma-separated list as given.
    `m` may be None where the set-up needs no family (not in FAMILY_PRESETS)."""
    preset = FAMILY_PRESETS.get(setup.lora_targets)
    if preset is None:
        if setup.lora_targets == "all-linear":
            return ()
        return tuple(t.strip() for t in setup.lora_targets.split(",") if t.strip())
    assert m is not None, f"--lora-targets {setup.lora_targets} needs the model family"
    names = preset(m)
    if not names:
        valid = ", ".join(dict.fromkeys(x.name for x in layer_linears(m) if x.module))
        raise EstimateError(
            f"--lora-targets {setup.lora_targets} means {LORA_PRESETS[setup.lora_targets]}, and {m.name} has none "
            f"known by name; list its modules instead (valid: {valid}) or use all-linear"
        )
    return names


def lora_target_text(m: ModelSpec | None, setup: Setup) -> str:
    """What LoRA adapts on `m`, in words: "q_proj, v_proj", or "query_key_value (...)" where q, k and v are one matrix."""
    names = lora_target_names(m, setup)
    if not names:
        return "all linear layers"
    text = ", ".join(names)
    if setup.lora_targets == "qv" and m is not None and m.fused_qkv:
        text += " (fused q, k, v: peft adapts the whole matrix)"
    return text


def modules_to_save_names(m: ModelSpec, setup: Setup) -> tuple[str, ...]:
    """peft's modules_to_save for `m`: each role named as `m`'s family names the module (GPT-NeoX: embed_in)."""
    names = embedding_modules(m)
    return tuple(names[role] for role in save_module_names(setup))
