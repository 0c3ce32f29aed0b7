"""README.md of a generated run: what it trains, the exact commands in order, the memory estimate, and what to
change when it runs out of memory. The phrases for the set-up and the rewards are in readme_words.py, the time and
cost section in readme_time.py."""

from __future__ import annotations

from estimators.kind_models import trained_model

from ..hubaccess import access_note
from .layout import describe
from .pins import OPTIONAL, PPO_TRL, dependencies
from .readme_time import time_lines
from .readme_words import adaptation_words, oom_advice, optimizer_words, precision_words, reward_lines, show, smaller_reward_lines
from .scripts import script_name, stage_scripts
from .trl_names import lora_spec


def readme(plan, files: dict[str, str], versions: dict[str, str]) -> str:
    first = plan.stages[0].setup
    needed = {dep.split("==")[0] for stage in plan.stages for dep in dependencies(stage.setup, versions)}  # OPTIONAL pins shown where used
    hw = plan.hardware
    distributed = first.world_size > 1 or first.parallel != "none"
    out = [
        f"# Fine-tuning run: {plan.pipeline} of {show(plan.model.name or plan.model.key)} with {plan.adaptation}",
        "",
        "Written by `advisor generate` from `plan.toml`. Generate again after editing the plan, or edit the blocks at the top",
        "of a script: `CONFIG` (model, data, folders) and, in TRL's names, `TRAINING` (the trainer's config), `MODEL`",
        "(`from_pretrained`), `LORA` (peft `LoraConfig`) and `QUANT` (`BitsAndBytesConfig`). Their values are the plan's;",
        "flags override them for one run. `PRICED` at the end of each script is the set-up the memory estimate priced.",
        "",
        "| | |",
        "|---|---|",
        f"| model | {show(plan.model.hf_id or plan.model.key)} |",
        f"| hardware | {hw.count * hw.nodes} x {hw.gpu_name or hw.gpu} ({hw.memory_gib:g} GiB each) |",
        f"| layout | {describe(first)} |",
        f"| precision | {first.precision}: {precision_words(first)} (bf16 falls back to fp16 on GPUs without bf16; fp32 on a CPU) |",
        f"| adaptation | {adaptation_words(first, lora_spec(plan, plan.stages[0]))} |",
        f"| batch | micro-batch {first.micro_batch} x {first.grad_accum} accumulation x {first.world_size} GPU(s), {first.seq_len} tokens |",
        f"| optimizer | {optimizer_words(first)} |",
        "",
        "## Stages, in order",
        "",
        "| # | stage | script | trains | data | starts from | output |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, stage in enumerate(plan.stages, 1):
        names = [name for name, _ in stage_scripts(stage)]
        scripts = f"`{names[0]}`" + "".join(f" (by-hand alternative: `{name}`, RLOO)" for name in names[1:])
        data = "bundled sample (`data/`)" if stage.dataset in ("", "bundled") else show(stage.dataset)
        own = trained_model(stage.setup.train, plan.model, stage.reward_value_model)  # a smaller reward model: its own weights
        start = f"stage {stage.base_from}" if stage.base_from else ("the model" if own is plan.model else show(own.hf_id or own.key))
        if stage.reward_from:
            start += f"; rewards from stage {stage.reward_from}"
        out.append(
            f"| {i} | {stage.name} | {scripts} | {stage.setup.train} ({stage.data_format} data) | {data} | {start} | {show(stage.output_dir)} |"
        )
    out += reward_lines(plan)
    out += smaller_reward_lines(plan)
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
    access = access_note(model_id, show(model_id))
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
    out += time_lines(plan)
    out += ["", "## If it runs out of memory", ""]
    out += [f"{i}. {tip}" for i, tip in enumerate(oom_advice(first), 1)]
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
