"""README.md of a generated run: what it trains, the exact commands in order, the memory estimate, and what to
change when it runs out of memory."""

from __future__ import annotations

import json
import re

from estimators.setup import lora_target_names

from .layout import describe


def _show(text: str) -> str:
    """A user string shown inline as code; anything beyond plain path characters is JSON-quoted, so quotes,
    newlines and backticks stay visible and inert."""
    if re.fullmatch(r"[\w ./:@+~(),-]+", text):
        return f"`{text}`"
    return "`" + json.dumps(text, ensure_ascii=False).replace("`", "\\u0060") + "`"


def _precision(setup) -> str:
    words = {
        "bf16": "bf16 weights and compute",
        "fp16": "fp16 weights and compute",
        "bf16-mixed": "fp32 master weights, bf16 autocast",
        "fp16-mixed": "fp32 master weights, fp16 autocast with loss scaling",
        "fp32": "fp32",
    }
    return words[setup.precision]


def _adaptation(setup) -> str:
    if setup.method == "full":
        return "full fine-tuning (every weight trained)"
    targets = lora_target_names(setup)
    where = ", ".join(targets) if targets else "all linear layers"
    text = f"LoRA r={setup.lora_r}, alpha={setup.lora_alpha}, dropout={setup.lora_dropout} on {where}"
    if setup.method == "qlora":
        dq = " + double quantisation" if setup.double_quant else ""
        up = ", non-quantized weights upcast to fp32 (prepare_model_for_kbit_training)" if setup.kbit_upcast else ""
        text += f" over 4-bit {setup.quant_type}{dq} weights{up}"
    return text


def _oom_advice(setup) -> list[str]:
    """What to change, most effective and least intrusive first; steps the plan already takes are left out."""
    tips = []
    if setup.micro_batch > 1:
        tips.append(
            f"Halve the micro-batch and double gradient accumulation (same effective batch): `--batch-size {max(1, setup.micro_batch // 2)}` "
            f"and `\"grad_accum\": {setup.grad_accum * 2}` in CONFIG."
        )
    if not setup.checkpointing:
        tips.append('Turn on gradient checkpointing: `"grad_ckpt": True` in CONFIG (about 30% slower, activations shrink to one per layer).')
    tips.append(f"Shorten sequences: `--seq-len {max(128, setup.seq_len // 2)}` (activations and logits scale with it).")
    if setup.attention == "eager":
        tips.append('Use `"attention": "sdpa"` (or "flash" with flash-attn installed): eager attention keeps the S x S scores.')
    if setup.optimizer in ("adamw", "lion") and setup.method == "full":
        tips.append('Use an 8-bit optimizer: `"optimizer": "paged_adamw8bit"` (needs bitsandbytes) cuts optimizer state by ~75%.')
    if setup.method == "full":
        tips.append("Train LoRA adapters instead of every weight: `advisor generate ... --method lora` (optimizer state and gradients only for the adapters).")
    elif setup.method == "lora":
        tips.append("Quantize the frozen weights to 4 bits: `advisor generate ... --method qlora`.")
    if setup.world_size > 1 and setup.parallel in ("none", "ddp", "zero1", "zero2"):
        tips.append("Shard more across the GPUs: `--parallel zero3` or `--parallel fsdp` (weights, gradients and optimizer state split over GPUs).")
    if setup.parallel in ("zero2", "zero3") and not setup.offload_optimizer:
        tips.append("Offload the optimizer state to CPU memory: `offload_optimizer_device: cpu` in accelerate_config.yaml (slower).")
    tips.append("Check the numbers again with `advisor estimate` and the same flags before a long run.")
    return tips


def readme(plan, files: dict[str, str], versions: dict[str, str]) -> str:
    from . import PPO_TRL, script_name, stage_scripts

    first = plan.stages[0].setup
    hw = plan.hardware
    distributed = first.world_size > 1 or first.parallel != "none"
    out = [
        f"# Fine-tuning run: {plan.method} of {_show(plan.model.name or plan.model.key)} with {plan.adaptation}",
        "",
        "Written by `advisor generate` from `plan.toml`. Generate again after editing the plan, or edit the `CONFIG`",
        "dict at the top of a script (its values are the plan's; flags override them for one run).",
        "",
        "| | |",
        "|---|---|",
        f"| model | {_show(plan.model.hf_id or plan.model.key)} |",
        f"| hardware | {hw.count * hw.nodes} x {hw.gpu_name or hw.gpu} ({hw.memory_gib:g} GiB each) |",
        f"| layout | {describe(first)} |",
        f"| precision | {first.precision}: {_precision(first)} (bf16 falls back to fp16 on GPUs without bf16; fp32 on a CPU) |",
        f"| adaptation | {_adaptation(first)} |",
        f"| batch | micro-batch {first.micro_batch} x {first.grad_accum} accumulation x {first.world_size} GPU(s), {first.seq_len} tokens |",
        f"| optimizer | {first.optimizer}; gradient checkpointing {'on' if first.checkpointing else 'off'}; attention {first.attention} |",
        "",
        "## Stages, in order",
        "",
        "| # | stage | script | trains | data | starts from | output |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, stage in enumerate(plan.stages, 1):
        scripts = ", ".join(f"`{name}`" for name, _ in stage_scripts(stage))
        data = "bundled sample (`data/`)" if stage.dataset in ("", "bundled") else _show(stage.dataset)
        start = f"stage {stage.base_from}" if stage.base_from else "the model"
        if stage.reward_from:
            start += f"; rewards from stage {stage.reward_from}"
        out.append(f"| {i} | {stage.name} | {scripts} | {stage.setup.train} ({stage.data_format} data) | {data} | {start} | {_show(stage.output_dir)} |")
    out += [
        "",
        "## Install",
        "",
        "Every script lists its exact dependencies in a PEP 723 block; pip 26 or newer installs them:",
        "",
        "```sh",
        "python -m venv .venv && . .venv/bin/activate",
        "pip install 'pip>=26'",
        f"pip install --requirements-from-script {script_name(plan.stages[0].name)}",
        "```",
        "",
        f"Pinned: {', '.join(f'{k} {v}' for k, v in versions.items())}. The torch pin resolves to the build your",
        "platform's index serves; for a specific CUDA build add `--index-url https://download.pytorch.org/whl/cu128` (or yours).",
        "",
        "## Run",
        "",
        "From this folder, one stage after the other (each stage waits for the output of the one before):",
        "",
        "```sh",
    ]
    for stage in plan.stages:
        name = script_name(stage.name)
        if distributed:
            out.append(f"accelerate launch --config_file accelerate_config.yaml {name}")
        else:
            out.append(f"python {name}")
    out += [
        "```",
        "",
        "or let the advisor run them in order with live progress: `advisor launch .` (`advisor launch . --resume` after an",
        "interruption).",
        "",
        "A smoke test without a GPU runs any script on the CPU in fp32: `python "
        + script_name(plan.stages[0].name)
        + " --max-steps 3` (with the real model that is slow; `--model tiny` uses a 2-layer random model built locally).",
    ]
    if distributed:
        out += ["", f"`accelerate_config.yaml` describes the layout: {describe(first)}."]
    if first.nodes > 1:
        out += [
            "",
            f"**Multi-node**: copy this folder to each of the {first.nodes} machines, then in `accelerate_config.yaml` set",
            "`machine_rank` (0 on the main machine, 1, 2, ... on the others), `main_process_ip` (the main machine's",
            "address) and `main_process_port` (a port open between the machines); run the same command on every machine.",
        ]
    if any(stage.setup.train == "ppo" for stage in plan.stages):
        ppo = next(stage for stage in plan.stages if stage.setup.train == "ppo")
        out += [
            "",
            "## PPO: which script you get",
            "",
            f"The plan's last step is PPO (policy + value model + frozen reference + the reward model of stage `{ppo.reward_from}`).",
            f"trl removed PPO after version {PPO_TRL}, and the other stages use trl {versions.get('trl', '?')}. So this run has two scripts for it:",
            "",
            f"- `{script_name(ppo.name)}`: PPO itself (`trl.experimental.ppo.PPOTrainer`); its dependency block pins `trl=={PPO_TRL}`,",
            "  so install it into its own environment:",
            "",
            "  ```sh",
            "  python -m venv .venv-ppo && .venv-ppo/bin/pip install 'pip>=26'",
            f"  .venv-ppo/bin/pip install --requirements-from-script {script_name(ppo.name)}",
            f"  .venv-ppo/bin/python {script_name(ppo.name)}",
            "  ```",
            "",
            f"- `{script_name(ppo.name, 'rloo')}`: RLOO (`trl.RLOOTrainer`) on the same reward model with the current trl and the same",
            "  environment as the other stages. No value model, so it needs less memory than PPO (the memory estimate prices PPO).",
            "",
            f"`advisor launch` runs `{script_name(ppo.name)}`, which is what the plan asks for. PPO resume: trl's PPOTrainer cannot resume,",
            "so the script restores the policy, the value model (saved next to each checkpoint) and the optimizer state; the",
            "learning-rate schedule restarts over the remaining steps.",
        ]
    out += ["", "## Memory estimate", ""]
    if plan.estimate is not None:
        est = plan.estimate
        verdict = "fits" if est.fits else "does NOT fit"
        out += [
            f"Peak {est.peak_allocated_gib:.1f} GiB allocated ({est.peak_reserved_gib:.1f} GiB reserved by the CUDA allocator) during {est.peak_phase},",
            f"on a {est.device_gib:g} GiB device: {verdict} ({est.headroom_gib:+.1f} GiB headroom). nvidia-smi shows roughly 0.5-1 GiB more (CUDA context).",
        ]
        if est.rule_of_thumb_gib is not None:
            out.append(f"Rule of thumb for comparison: {est.rule_of_thumb_gib:.1f} GiB. {est.rule_of_thumb_note}".rstrip())
    else:
        out.append("Not part of this plan; `advisor estimate` with the same flags prices it term by term.")
    out += ["", "## If it runs out of memory", ""]
    out += [f"{i}. {tip}" for i, tip in enumerate(_oom_advice(first), 1)]
    out += [
        "",
        "## Progress, interruption, resume",
        "",
        "Each script prints one JSON object per line (`start`, `log` with loss / learning rate / tokens per second / peak",
        "GPU memory, `checkpoint`, `end`) and appends it to `<output_dir>/progress.jsonl`. Checkpoints are written every",
        "`save_steps` steps and at the end. Ctrl-C (SIGINT) or SIGTERM finishes the current step, saves a checkpoint and",
        "exits with code 130; `python <script> --resume` continues from the last `checkpoint-*` of the output folder.",
        "",
        "## Files",
        "",
    ]
    notes = {
        "accelerate_config.yaml": "the multi-GPU / multi-node layout for `accelerate launch`",
        "plan.toml": "the plan these files were generated from",
        "README.md": "this file",
    }
    for rel in sorted(files):
        if rel.endswith(".py"):
            note = "training script (PEP 723 block, CONFIG, `main()`)"
        elif rel.startswith("data/sample_"):
            note = "a few rows of the expected data format"
        elif rel.startswith("data/"):
            note = "bundled offline data (English and Korean) the scripts use by default"
        else:
            note = notes.get(rel, "")
        out.append(f"- `{rel}`: {note}")
    out.append("- `README.md`: this file")
    return "\n".join(out) + "\n"
