"""README.md of a generated run: what it trains, the exact commands in order, the memory estimate, and what to
change when it runs out of memory."""

from __future__ import annotations

import json
import re

from estimators.kind_models import trained_model
from estimators.setup import lora_target_text, modules_to_save_names

from ..hubaccess import access_note
from ..planning import plan_spec, stage_models
from .layout import describe
from .pins import OPTIONAL
from .trl_names import lora_spec


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


def _adaptation(setup, spec) -> str:
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


def _optimizer(setup) -> str:
    """The optimizer row: the optimizer (GaLore's low-rank AdamW), checkpointing, activation offloading, attention."""
    optimizer = "GaLore AdamW (galore_adamw, rank 128, all linear layers; galore-torch)" if setup.galore else setup.optimizer
    offload = "; activation offloading to host RAM (on a GPU)" if setup.act_offload else ""
    return f"{optimizer}; gradient checkpointing {'on' if setup.checkpointing else 'off'}{offload}; attention {setup.attention}"


def _oom_advice(setup) -> list[str]:
    """What to change, most effective and least intrusive first; steps the plan already takes are left out."""
    tips = []
    if setup.micro_batch > 1:
        tips.append(
            f"Halve the micro-batch and double gradient accumulation (same effective batch): `--batch-size {max(1, setup.micro_batch // 2)}` "
            f"and `gradient_accumulation_steps={setup.grad_accum * 2}` in TRAINING."
        )
    if not setup.checkpointing:
        tips.append("Turn on gradient checkpointing: `activation_checkpointing=True` in TRAINING (about 30% slower, activations shrink to one per layer).")
    tips.append(f"Shorten sequences: `--seq-len {max(128, setup.seq_len // 2)}` (activations and logits scale with it).")
    if setup.attention == "eager":
        tips.append('Use `attn_implementation="sdpa"` in MODEL (or "flash_attention_2" with flash-attn installed): eager attention keeps the S x S scores.')
    if setup.optimizer in ("adamw", "lion") and setup.adaptation == "full":
        tips.append('Use an 8-bit optimizer: `optim="paged_adamw_8bit"` in TRAINING (needs bitsandbytes) cuts optimizer state by ~75%.')
    if setup.adaptation == "full":
        tips.append("Train LoRA adapters instead of every weight: `advisor generate ... --method lora` (optimizer state and gradients only for the adapters).")
    elif setup.adaptation == "lora":
        tips.append("Quantize the frozen weights to 4 bits: `advisor generate ... --method qlora`.")
    if setup.world_size > 1 and setup.parallel in ("none", "ddp", "zero1", "zero2"):
        tips.append("Shard more across the GPUs: `--parallel zero3` or `--parallel fsdp` (weights, gradients and optimizer state split over GPUs).")
    if setup.parallel in ("zero2", "zero3") and not setup.offload_optimizer:
        tips.append("Offload the optimizer state to CPU memory: `offload_optimizer_device: cpu` in accelerate_config.yaml (slower).")
    tips.append("Check the numbers again with `advisor estimate` and the same flags before a long run.")
    return tips


def _reward_lines(plan) -> list[str]:
    """How each GRPO stage is rewarded; the placeholder is said loudly, because it trains towards nothing useful."""
    out = []
    for stage in plan.stages:
        if stage.setup.train != "grpo":
            continue
        if stage.reward_from:
            how = f"the reward model trained by stage {stage.reward_from}"
        elif stage.reward_model:
            how = f"the reward model {_show(stage.reward_model)}"
        elif stage.reward_fn:
            how = f"your function {_show(stage.reward_fn)} (called with the completions and every dataset column)"
        elif stage.reward_check:
            how = f"exact match: 1 when the completion equals the dataset field {_show(stage.reward_check)} (spaces and case ignored), else 0"
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


def _smaller_reward_lines(plan) -> list[str]:
    """Why the reward model is smaller than the policy, when it is (advisor/advice/reward_size.py)."""
    stage = next((s for s in plan.stages if s.setup.train == "reward" and s.reward_value_model), None)
    if stage is None:
        return []
    rv = stage.reward_value_model
    return [
        "",
        f"**The reward model is smaller than the policy**: stage {stage.name} trains {_show(rv.hf_id or rv.key)} ({rv.name}, "
        f"{rv.params_total / 1e9:.1f}B parameters) from its own pretrained weights, not the SFT model. A reward and a value model the size",
        f"of {plan.model.name} do not fit on {plan.hardware.count} x {plan.hardware.gpu_name or plan.hardware.gpu}, so the plan follows InstructGPT",
        "(Ouyang et al. 2022: a 6B reward model for a 175B policy): PPO scores the policy's rollouts with this model and starts its",
        "value model from it. It shares the policy's tokenizer (same family and vocabulary), which trl's PPO needs: it feeds",
        "the policy's token ids to both. A smaller judge is somewhat less accurate; the memory and time below are priced with it.",
    ]


# Examples each stage is priced for when neither the plan nor its answers give a data size: the low end of the
# source document's §2 SFT scale ("수만~수십만 개"), as advisor/advice/timecost.py assumes (SFT_SCALE).
ASSUMED_EXAMPLES = 10_000


def _time_lines(plan) -> list[str]:
    """'## Expected time and cost': each stage's tokens/s, hours and dollars on the plan's GPU (estimators/time_plan
    .readme_lines), for the data size the plan was advised for (plan.time) or its answers, else an assumption said
    as one. Nothing when the GPU has no speed figures (a size like "24GB") or the model cannot be priced."""
    from estimators.catalog import TINY
    from estimators.errors import EstimateError
    from estimators.gpus import find_gpu
    from estimators.time_plan import Stage, readme_lines
    from estimators.time_report import Dataset

    from ..advice.timecost import plan_price
    from ..errors import AdvisorError

    if plan.model.key == TINY:  # a 2-layer random smoke-test model: its seconds say nothing about a real run
        return []
    try:
        gpu = find_gpu(plan.hardware.gpu)
        if not gpu.timed:
            return []
        spec = plan_spec(plan)
    except (EstimateError, AdvisorError, OSError, ValueError):
        return []
    t = getattr(plan, "time", None)
    count = (t.examples if t is not None else None) or (plan.answers or {}).get("data_count")
    n = int(count) if count else ASSUMED_EXAMPLES
    stages = []
    for stage in plan.stages:
        mean = t.mean_tokens if t is not None else stage.setup.seq_len
        reward = stage_models(plan, stage)[1]
        stages.append(Stage(stage.name, spec, stage.setup, Dataset(examples=n, mean_tokens=float(mean), epochs=stage.hyper.epochs), reward))
    try:
        table = readme_lines(stages, gpu, plan_price(plan))  # the user's price when the plan was advised with one
    except EstimateError:
        return []
    assumed = "" if count else f" (assumed: {n:,} is the low end of the source document's §2 scale; give `--data-count`)"
    size = (f"Priced for {n:,} examples per stage{assumed}, each up to {int(stages[0].dataset.mean_tokens):,} tokens "
            "(an upper bound when examples are shorter), for the epochs of the plan. `advisor launch` prints the measured "
            "tokens/s next to this prediction.")
    return ["", "## Expected time and cost", "", *table, "", size]


def readme(plan, files: dict[str, str], versions: dict[str, str]) -> str:
    from . import PPO_TRL, dependencies, script_name, stage_scripts

    first = plan.stages[0].setup
    needed = {dep.split("==")[0] for stage in plan.stages for dep in dependencies(stage.setup, versions)}  # OPTIONAL pins shown where used
    hw = plan.hardware
    distributed = first.world_size > 1 or first.parallel != "none"
    out = [
        f"# Fine-tuning run: {plan.pipeline} of {_show(plan.model.name or plan.model.key)} with {plan.adaptation}",
        "",
        "Written by `advisor generate` from `plan.toml`. Generate again after editing the plan, or edit the blocks at the top",
        "of a script: `CONFIG` (model, data, folders) and, in TRL's names, `TRAINING` (the trainer's config), `MODEL`",
        "(`from_pretrained`), `LORA` (peft `LoraConfig`) and `QUANT` (`BitsAndBytesConfig`). Their values are the plan's;",
        "flags override them for one run. `PRICED` at the end of each script is the set-up the memory estimate priced.",
        "",
        "| | |",
        "|---|---|",
        f"| model | {_show(plan.model.hf_id or plan.model.key)} |",
        f"| hardware | {hw.count * hw.nodes} x {hw.gpu_name or hw.gpu} ({hw.memory_gib:g} GiB each) |",
        f"| layout | {describe(first)} |",
        f"| precision | {first.precision}: {_precision(first)} (bf16 falls back to fp16 on GPUs without bf16; fp32 on a CPU) |",
        f"| adaptation | {_adaptation(first, lora_spec(plan, plan.stages[0]))} |",
        f"| batch | micro-batch {first.micro_batch} x {first.grad_accum} accumulation x {first.world_size} GPU(s), {first.seq_len} tokens |",
        f"| optimizer | {_optimizer(first)} |",
        "",
        "## Stages, in order",
        "",
        "| # | stage | script | trains | data | starts from | output |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, stage in enumerate(plan.stages, 1):
        names = [name for name, _ in stage_scripts(stage)]
        scripts = f"`{names[0]}`" + "".join(f" (by-hand alternative: `{name}`, RLOO)" for name in names[1:])
        data = "bundled sample (`data/`)" if stage.dataset in ("", "bundled") else _show(stage.dataset)
        own = trained_model(stage.setup.train, plan.model, stage.reward_value_model)  # a smaller reward model: its own weights
        start = f"stage {stage.base_from}" if stage.base_from else ("the model" if own is plan.model else _show(own.hf_id or own.key))
        if stage.reward_from:
            start += f"; rewards from stage {stage.reward_from}"
        out.append(f"| {i} | {stage.name} | {scripts} | {stage.setup.train} ({stage.data_format} data) | {data} | {start} | {_show(stage.output_dir)} |")
    out += _reward_lines(plan)
    out += _smaller_reward_lines(plan)
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
        f"Pinned: {', '.join(f'{k} {v}' for k, v in versions.items() if k not in OPTIONAL or k in needed)}. The torch pin resolves to the build your",
        "platform's index serves; for a specific CUDA build add `--index-url https://download.pytorch.org/whl/cu128` (or yours).",
        "",
    ]
    model_id = plan.model.hf_id or plan.model.key
    access = access_note(model_id, _show(model_id))
    if access:
        out += ["## Access to the model", "", access, ""]
    out += [
        "## Run",
        "",
        "From this folder, one stage after the other (each stage waits for the output of the one before):",
        "",
        "```sh",
    ]
    for stage in plan.stages:
        name = script_name(stage.name)
        own = stage.setup.train == "ppo"  # trl 1.12.0: its own environment (the section below)
        python = ".venv-ppo/bin/python" if own else "python"
        if distributed:
            accelerate = ".venv-ppo/bin/accelerate" if own else "accelerate"
            out.append(f"{accelerate} launch --config_file accelerate_config.yaml {name}")
        else:
            out.append(f"{python} {name}" + ("   # trl 1.12.0: see 'PPO: its own environment'" if own else ""))
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
            "## PPO: its own environment",
            "",
            f"The plan's last step is PPO (policy + value model + frozen reference + the reward model of stage `{ppo.reward_from}`), and the",
            f"memory estimate prices PPO. trl removed PPO after version {PPO_TRL}, while the other stages use trl {versions.get('trl', '?')}, so",
            f"`{script_name(ppo.name)}` pins `trl=={PPO_TRL}` and marks that pin as one it cannot run without (`[tool.advisor]` in its",
            "dependency block).",
            "",
            f"`advisor launch` runs `{script_name(ppo.name)}` in that environment: on the first launch it builds a venv under",
            "`~/.cache/advisor/envs/` (or `$ADVISOR_ENV_DIR`) that shares the packages of the launcher's environment and adds",
            f"`trl=={PPO_TRL}` (with `uv` when it is installed, else pip; this needs the package index once), then reuses it.",
            "`advisor launch . --dry-run` shows which interpreter each stage gets. By hand:",
            "",
            "```sh",
            "python -m venv .venv-ppo && .venv-ppo/bin/pip install 'pip>=26'",
            f".venv-ppo/bin/pip install --requirements-from-script {script_name(ppo.name)}",
            f".venv-ppo/bin/python {script_name(ppo.name)}",
            "```",
            "",
            f"`{script_name(ppo.name, 'rloo')}` is an alternative you may run yourself: RLOO (`trl.RLOOTrainer`) on the same reward",
            "model with the current trl, no value model. It is not what the plan priced or what `advisor launch` runs.",
            "",
            "PPO resume: trl's PPOTrainer cannot resume,",
            "so the script restores the policy, the value model (saved next to each checkpoint) and the optimizer state; the",
            "learning-rate schedule restarts over the remaining steps.",
        ]
    out += ["", "## Memory estimate", ""]
    if plan.estimate is not None:
        est = plan.estimate
        verdict = "fits" if est.fits else "does NOT fit"
        # device_gib is what the run needs on the card (reserved + CUDA context), not the card: the card is hw.
        out += [
            f"Peak {est.peak_allocated_gib:.1f} GiB allocated ({est.peak_reserved_gib:.1f} GiB reserved by the CUDA allocator) during {est.peak_phase}.",
            f"On the card that is about {est.device_gib:.2f} GiB, what nvidia-smi shows (reserved + the CUDA context), per GPU.",
            f"The {hw.gpu_name or hw.gpu} has {hw.memory_gib:.2f} GiB: {verdict} ({est.headroom_gib:+.2f} GiB headroom).",
        ]
        # the plan's margin and paged optimizer states, when the plan carries them (getattr: older plan files)
        out += [note[0].upper() + note[1:].rstrip(".") + "." for note in (getattr(est, "margin_note", ""), getattr(est, "paged_note", "")) if note]
        if est.rule_of_thumb_gib is not None:
            out.append(f"Rule of thumb for comparison: {est.rule_of_thumb_gib:.1f} GiB. {est.rule_of_thumb_note}".rstrip())
    else:
        out.append("Not part of this plan; `advisor estimate` with the same flags prices it term by term.")
    out += _time_lines(plan)
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
        "common.py": "the helpers every training script imports: loading, data, progress events, signals, resume",
        "plan.toml": "the plan these files were generated from",
        "README.md": "this file",
    }
    for rel in sorted(files):
        if rel.startswith("train_"):
            note = "training script (PEP 723 block, CONFIG and TRL-named blocks, `main()`, PRICED)"
        elif rel.startswith("data/sample_"):
            note = "a few rows of the expected data format"
        elif rel.startswith("data/"):
            note = "bundled offline data (English and Korean) the scripts use by default"
        else:
            note = notes.get(rel, "")
        out.append(f"- `{rel}`: {note}")
    out.append("- `README.md`: this file")
    return "\n".join(out) + "\n"
