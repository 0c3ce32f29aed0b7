"""How a run's README puts the plan in words: a user string shown as code, the set-up's precision, adaptation and
optimizer rows, what to change when it runs out of memory, and how each stage is rewarded. Its own module so that
readme.py holds the page's order and sections, and these phrases can be read one by one."""

from __future__ import annotations

import json
import re

from estimators.lora_targets import lora_target_text, modules_to_save_names


def show(text: str) -> str:
    """A user string shown inline as code; anything beyond plain path characters is JSON-quoted, so quotes,
    newlines and backticks stay visible and inert."""
    if re.fullmatch(r"[\w ./:@+~(),-]+", text):
        return f"`{text}`"
    return "`" + json.dumps(text, ensure_ascii=False).replace("`", "\\u0060") + "`"


def precision_words(setup) -> str:
    """The precision row: what the weights are stored in and what computes."""
    words = {
        "bf16": "bf16 weights and compute",
        "fp16": "fp16 weights and compute",
        "bf16-mixed": "fp32 master weights, bf16 autocast",
        "fp16-mixed": "fp32 master weights, fp16 autocast with loss scaling",
        "fp32": "fp32",
    }
    return words[setup.precision]


def adaptation_words(setup, spec) -> str:
    """The adaptation row: full fine-tuning, or the LoRA adapter (its rank, targets, 4-bit base, DoRA, saved modules)."""
    if setup.adaptation == "full":
        return "full fine-tuning (every weight trained)"
    text = f"LoRA r={setup.lora_r}, alpha={setup.lora_alpha}, dropout={setup.lora_dropout} on {lora_target_text(spec, setup)}"
    if setup.adaptation == "qlora":
        dq = " + double quantisation" if setup.double_quant else ""
        up = ", non-quantized weights upcast to fp32 (prepare_model_for_kbit_training)" if setup.kbit_upcast else ""
        text += f" over 4-bit {setup.quant_type}{dq} weights{up}"
    if setup.dora:
        text += "; DoRA (use_dora: a trained magnitude per output feature)"
    if setup.modules_to_save:
        text += f"; {', '.join(modules_to_save_names(spec, setup))} trained in full (modules_to_save)"
    return text


def optimizer_words(setup) -> str:
    """The optimizer row: the optimizer (GaLore's low-rank AdamW), checkpointing, activation offloading, attention."""
    optimizer = "GaLore AdamW (galore_adamw, rank 128, all linear layers; galore-torch)" if setup.galore else setup.optimizer
    if setup.galore_layerwise:
        optimizer = optimizer.replace("galore_adamw", "galore_adamw_layerwise: each parameter stepped in backward")
    offload = "; activation offloading to host RAM (on a GPU)" if setup.act_offload else ""
    compiled = "; compiled with torch.compile (Inductor)" if setup.torch_compile else ""
    return f"{optimizer}; gradient checkpointing {'on' if setup.checkpointing else 'off'}{offload}; attention {setup.attention}{compiled}"


def oom_advice(setup) -> list[str]:
    """What to change, most effective and least intrusive first; steps the plan already takes are left out."""
    tips = []
    if setup.micro_batch > 1:
        tips.append(
            f"Halve the micro-batch and double gradient accumulation (same effective batch): `--batch-size {max(1, setup.micro_batch // 2)}` "
            f"and `gradient_accumulation_steps={setup.grad_accum * 2}` in TRAINING."
        )
    if not setup.checkpointing:
        tips.append(
            "Turn on gradient checkpointing: `activation_checkpointing=True` in TRAINING (about 30% slower, activations shrink to one per layer)."
        )
    tips.append(f"Shorten sequences: `--seq-len {max(128, setup.seq_len // 2)}` (activations and logits scale with it).")
    if setup.attention == "eager":
        tips.append(
            'Use `attn_implementation="sdpa"` in MODEL (or "flash_attention_2" with flash-attn installed): eager attention keeps the S x S scores.'
        )
    if setup.optimizer in ("adamw", "lion") and setup.adaptation == "full":
        tips.append('Use an 8-bit optimizer: `optim="paged_adamw_8bit"` in TRAINING (needs bitsandbytes) cuts optimizer state by ~75%.')
    if setup.adaptation == "full":
        tips.append(
            "Train LoRA adapters instead of every weight: `advisor generate ... --method lora` (optimizer state and gradients only for the adapters)."
        )
    elif setup.adaptation == "lora":
        tips.append("Quantize the frozen weights to 4 bits: `advisor generate ... --method qlora`.")
    if setup.world_size > 1 and setup.parallel in ("none", "ddp", "zero1", "zero2"):
        tips.append("Shard more across the GPUs: `--parallel zero3` or `--parallel fsdp` (weights, gradients and optimizer state split over GPUs).")
    if setup.parallel in ("zero2", "zero3") and not setup.offload_optimizer:
        tips.append("Offload the optimizer state to CPU memory: `offload_optimizer_device: cpu` in accelerate_config.yaml (slower).")
    tips.append("Check the numbers again with `advisor estimate` and the same flags before a long run.")
    return tips


def reward_lines(plan) -> list[str]:
    """How each GRPO stage is rewarded; the placeholder is said loudly, because it trains towards nothing useful."""
    out = []
    for stage in plan.stages:
        if stage.setup.train != "grpo":
            continue
        if stage.reward_from:
            how = f"the reward model trained by stage {stage.reward_from}"
        elif stage.reward_model:
            how = f"the reward model {show(stage.reward_model)}"
        elif stage.reward_fn:
            how = f"your function {show(stage.reward_fn)} (called with the completions and every dataset column)"
        elif stage.reward_check:
            how = f"exact match: 1 when the completion equals the dataset field {show(stage.reward_check)} (spaces and case ignored), else 0"
        else:
            out += [
                "",
                f"**Reward of stage {stage.name}: PLACEHOLDER.** No reward was given, so the script scores completions by length",
                "(it prefers answers of about 200 characters) and learns nothing about your task. Give a reward when generating",
                "(`--reward-check FIELD`, `--reward-fn FILE.py:FUNCTION` or `--reward-model MODEL`) or to the script (same flags).",
            ]
            continue
        out += ["", f"Reward of stage {stage.name}: {how}."]
    return out


def smaller_reward_lines(plan) -> list[str]:
    """Why the reward model is smaller than the policy, when it is (advisor/advice/reward_size.py)."""
    stage = next((s for s in plan.stages if s.setup.train == "reward" and s.reward_value_model), None)
    if stage is None:
        return []
    rv = stage.reward_value_model
    return [
        "",
        f"**The reward model is smaller than the policy**: stage {stage.name} trains {show(rv.hf_id or rv.key)} ({rv.name}, "
        f"{rv.params_total / 1e9:.1f}B parameters) from its own pretrained weights, not the SFT model. A reward and a value model the size",
        f"of {plan.model.name} do not fit on {plan.hardware.count} x {plan.hardware.gpu_name or plan.hardware.gpu}, so the plan follows InstructGPT",
        "(Ouyang et al. 2022: a 6B reward model for a 175B policy): PPO scores the policy's rollouts with this model and starts its",
        "value model from it. It shares the policy's tokenizer (same family and vocabulary), which trl's PPO needs: it feeds",
        "the policy's token ids to both. A smaller judge is somewhat less accurate; the memory and time below are priced with it.",
    ]
