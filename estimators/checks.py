"""Set-ups the estimator could price but that would surprise the user: one line each, as an error (the run
cannot be what was asked) or a warning (it can, but costs what nobody expects).

Errors, raised by `check_setup` (effective.for_model calls it, so `estimate()` and everything built on it refuse):
- LoRA target names that are not module names of the model (peft would raise "Target modules {...} not found"
  only for a list that matches nothing; a typo next to a real name is silently dropped there and here).
- an empty target list, which would otherwise read as "every linear layer".
- a preset (qv, attention) whose role the model does not name apart (lora_targets.lora_target_names resolves it per family).
- a LoRA rank above the hidden size: the update B @ A of a layer has rank at most min(in, out), so r beyond it
  only adds parameters (peft builds them anyway).
- a PPO / GRPO response that does not leave room for a prompt in the sequence (seq_len = prompt + response).
- an encoder (BERT, RoBERTa) under a training kind other than classification fine-tuning, or with LLaMA-Adapter.

Warnings, from `setup_warnings` (appended to Estimate.warnings) and `gpu_warnings` (needs the card):
- QLoRA that costs more than LoRA: bitsandbytes quantises nn.Linear only, transformers 5 stores MoE experts as
  fused raw parameters, and peft's prepare_model_for_kbit_training upcasts every unquantised weight to fp32.
- bf16 on a card without bf16 (T4, V100).
"""

from __future__ import annotations

from .errors import EstimateError
from .lora_targets import lora_target_names
from .model import ModelSpec
from .params import attention_targets
from .setup import LORA_PRESETS, Setup

ENCODER_STACKS = ("hf-trainer", "trl")  # the HF Trainer runs AutoModelForSequenceClassification; the others are decoder-only
PROMPT_ROOM = 8  # estimators/kind_rollout.py PROMPT_MIN: the generated PPO/GRPO scripts keep at least 8 prompt tokens


def valid_target_names(m: ModelSpec) -> list[str]:
    """Module names LoRA can target in a decoder layer of `m`: its nn.Linear names and, where peft re-targets
    them onto transformers 5's fused parameters, the old expert / router names it accepts."""
    from . import terms as t
    from .params import layer_linears

    names = [lin.name for lin in layer_linears(m) if lin.module]
    names += [n for n in attention_targets(m) if "." in n]  # GPT-2's attn.c_proj: the attention output alone
    names += list(t._peft_names(m))
    return list(dict.fromkeys(names))


def lora_target_problem(m: ModelSpec, setup: Setup) -> str | None:
    """A preset this model has no modules for, an empty list, or names that are not module names of `m`."""
    if setup.adaptation == "full":
        return None
    try:
        names = lora_target_names(m, setup)
    except EstimateError as e:  # a preset whose role `m` does not name apart (a meta-device census family)
        return str(e)
    if setup.lora_targets in LORA_PRESETS:
        return None
    presets = ", ".join(LORA_PRESETS)
    if not names:
        return f"--lora-targets is empty; name modules (e.g. q_proj,v_proj) or a preset ({presets}); all-linear adapts every linear layer"
    valid = valid_target_names(m)
    unknown = [n for n in names if n not in valid]
    if unknown:
        word = "name" if len(unknown) == 1 else "names"
        return (
            f"--lora-targets: unknown module {word} {', '.join(repr(n)[:40] for n in unknown[:5])} for {m.name}; "
            f"valid: {', '.join(valid)}, or a preset ({presets})"
        )
    return None


def rank_problem(m: ModelSpec, setup: Setup) -> str | None:
    if setup.adaptation == "full" or setup.lora_r <= m.hidden_size:
        return None
    return (
        f"--lora-r {setup.lora_r} is larger than {m.name}'s hidden size {m.hidden_size}: a LoRA update has rank "
        f"at most min(in, out) of its layer, so use r <= {m.hidden_size} (8-64 is usual)"
    )


def response_problem(setup: Setup) -> str | None:
    if setup.train not in ("ppo", "grpo") or setup.response_len + PROMPT_ROOM <= setup.seq_len:
        return None
    return (
        f"--response-len {setup.response_len} leaves no room for a prompt in --seq-len {setup.seq_len} "
        f"({setup.train.upper()} sequences are prompt + response): use a response of at most "
        f"{max(1, setup.seq_len - PROMPT_ROOM)} tokens or a longer --seq-len"
    )


def encoder_problem(m: ModelSpec, setup: Setup) -> str | None:
    """An encoder (BERT, RoBERTa) is priced fine-tuned for sequence classification, the one training it is used
    for: no preference or RL kind (they score a causal LM's tokens), no LLaMA-Adapter (a decoder's attention)."""
    if not m.encoder:
        return None
    if setup.train != "sft":
        return (
            f"{m.name} is an encoder ({m.model_type}): it is priced fine-tuned for sequence classification (--train sft); "
            f"--train {setup.train} needs a causal language model"
        )
    if setup.llama_adapter:
        return f"--llama-adapter adapts a decoder's attention; {m.name} is an encoder ({m.model_type}): use --method lora or full"
    if setup.adaptation == "qlora" and m.model_type == "roberta":
        # transformers' 4-bit loading keeps only the last module (classifier.out_proj) unquantised, so the head's dense
        # is 4-bit, and peft's SEQ_CLS copy of `classifier` cannot make it trainable (advisor/measure/build.py refuses it)
        return f"--method qlora on {m.name}: bitsandbytes quantises its classification head's dense layer, which peft then cannot train; use --method lora"
    if setup.stack not in ENCODER_STACKS:
        return f"--stack {setup.stack} trains causal language models; {m.name} is an encoder: use --stack {' or '.join(ENCODER_STACKS)}"
    return None


def check_setup(m: ModelSpec, setup: Setup) -> None:
    """Raise EstimateError (one line) for a set-up that cannot be what the user meant."""
    for problem in (encoder_problem(m, setup), lora_target_problem(m, setup), rank_problem(m, setup), response_problem(setup)):
        if problem:
            raise EstimateError(problem)


def qlora_costs_more(m: ModelSpec, setup: Setup) -> str | None:
    """QLoRA's base weights against LoRA's on the same set-up (weights only: activations are alike)."""
    if setup.adaptation != "qlora":
        return None
    from . import terms as t
    from .dtypes import GIB

    qlora = t.base_weights(m, setup)
    lora = t.base_weights(m, setup.with_(adaptation="lora"))
    if qlora <= lora:
        return None
    why = (
        "peft's prepare_model_for_kbit_training upcasts every unquantised weight to fp32"
        if setup.kbit_upcast
        else "the unquantised weights stay in the compute dtype"
    )
    experts = " (transformers 5 keeps the fused MoE experts as raw parameters, which bitsandbytes does not quantise)" if m.is_moe else ""
    return (
        f"QLoRA costs more than LoRA on {m.name}: {qlora / GIB:.1f} GiB of base weights against {lora / GIB:.1f}, "
        f"because only nn.Linear layers are quantised{experts} and {why}; use --method lora"
        + (" or --no-kbit-upcast (keeps them in the compute dtype)" if setup.kbit_upcast else "")
    )


def setup_warnings(m: ModelSpec, setup: Setup) -> list[str]:
    out = []
    costly = qlora_costs_more(m, setup)
    if costly:
        out.append(costly)
    return out


def gpu_warnings(setup: Setup, gpu) -> list[str]:
    """Warnings that need the card: bf16 on a card without it."""
    out = []
    if gpu is not None and not gpu.bf16 and setup.precision.startswith("bf16"):
        use = "fp16-mixed (full fine-tuning)" if setup.adaptation == "full" else "fp16 (LoRA and QLoRA compute in fp16)"
        out.append(f"the {gpu.name} has no bf16 (its tensor cores do fp16, not bf16): transformers refuses bf16=True there; use --precision {use}")
    return out
