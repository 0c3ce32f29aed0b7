"""The Python files of a run folder: `common.py` (the helpers every stage shares, written once) and each stage's
training scripts, composed from the files in `templates/` by concatenation and plain string substitution of `@@NAME@@`
markers.

common.py: common_header, runtime (command line, overrides, this device), model (tiny model, loading, 4-bit
quantization, merging), data, progress (JSON events, signals), fit (train with resume and save), rewards (reward
model of online RL); it is the same in every run folder. A stage script: stage_header (PEP 723 block, docstring,
imports, `from common import ...`, the CONFIG / TRAINING / MODEL / LORA / QUANT blocks), the kind's body
(kind_*.py.tmpl: its imports, `#@ common` the names it takes from common.py, `#@ body` its main()), then the PRICED
provenance block. The blocks are the plan in TRL's names (trl_names.py), translated here, once.
Every user string (model id, paths, dataset names) reaches a script only inside those literals, written with
`repr()`, never spliced into code. Nothing here imports torch.
"""

from __future__ import annotations

import re
from importlib import resources

from . import trl_names
from .config_block import CONFIG_NOTES, PPO_CONFIG_NOTES, stage_config
from .layout import describe
from .literals import py_kwargs, py_literal
from .pins import PPO_TRL, dependencies

TEMPLATES = resources.files(__package__) / "templates"

# In the PPO script's PEP 723 block: the pin it cannot run without. `advisor launch` (advisor/scriptenv.py) runs
# the script in an environment with that pin, built once, when the launcher's own trl differs.
PPO_TOOL_BLOCK = (
    f'# [tool.advisor]\n# exact = ["trl"]  # trl.experimental.ppo exists up to trl {PPO_TRL}: advisor launch builds an environment with it\n'
)
MARKER = re.compile(r"@@[A-Z_]+@@")

KINDS = {
    # train kind -> (template, title, description)
    "sft": (
        "sft",
        "Supervised fine-tuning (SFT) with TRL's SFTTrainer.",
        "Trains the model on instruction/answer conversations; TRL applies the tokenizer's chat template.",
    ),
    "reward": (
        "reward",
        "Reward model training with TRL's RewardTrainer.",
        "A scalar head (AutoModelForSequenceClassification, num_labels=1) learns to score the chosen answer above the\nrejected one.",
    ),
    "dpo": (
        "dpo",
        "Direct preference optimisation (DPO) with TRL's DPOTrainer.",
        "Learns from chosen/rejected pairs without a reward model; the reference is the frozen starting model.",
    ),
    "grpo": (
        "grpo",
        "Group relative policy optimisation (GRPO) with TRL's GRPOTrainer.",
        "Samples several completions per prompt and rewards them (a reward model or a Python reward function).",
    ),
    "rloo": (
        "grpo",
        "RLOO (REINFORCE leave-one-out) with TRL's RLOOTrainer: the current-trl alternative to PPO.",
        "Online RL on the reward model of this run with the same environment as the other stages (trl >= 1.13 has\nno PPO). Same reward model and KL coefficient as train_ppo.py, no value model. An alternative to run by\nhand: the plan priced PPO, and `advisor launch` runs train_ppo.py.",
    ),
    "ppo": (
        "ppo",
        "PPO (RLHF step 3) with trl 1.12.0's trl.experimental.ppo.PPOTrainer.",
        "Policy + value model + frozen reference + reward model. trl removed PPO after 1.12.0, so this script pins\n"
        "trl==1.12.0: `advisor launch` runs it in an environment with that trl, built once (README.md: 'PPO: its own environment').",
    ),
}
RL_CLASSES = {
    "grpo": ("GRPOConfig", "GRPOTrainer", "online RL with a group baseline (GRPO)"),
    "rloo": ("RLOOConfig", "RLOOTrainer", "online RL with a leave-one-out baseline (RLOO)"),
}
TRAINING_NOTES = {"warmup_steps": "below 1: a fraction of the steps", "disable_tqdm": "progress goes out as JSON lines (common.py Progress)"}
MODEL_CLASS = {"reward": "AutoModelForSequenceClassification"}  # the rest: AutoModelForCausalLM
COMMON_SNIPPETS = ("common_header", "runtime", "model", "data", "progress", "fit", "rewards")


def _template(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def script_name(stage_name: str, variant: str = "") -> str:
    return f"train_{stage_name}_{variant}.py" if variant else f"train_{stage_name}.py"


def priced(setup) -> dict:
    """The PRICED block: the plan's Setup as the estimate priced it, gradient checkpointing resolved."""
    data = setup.to_dict()
    data["grad_ckpt"] = setup.checkpointing
    return data


def _fill(text: str, fills: dict[str, str]) -> str:
    for key, value in fills.items():
        text = text.replace(f"@@{key}@@", value)
    return text


def render_common() -> str:
    """common.py: the same text for every plan."""
    return "".join(_template(f"{name}.py.tmpl") for name in COMMON_SNIPPETS)


def render_script(plan, stage, kind: str, versions: dict[str, str]) -> str:
    """The training script of `stage` for `kind` (the stage's train kind, or "rloo": PPO's by-hand alternative)."""
    template, title, description = KINDS[kind]
    variant = "rloo" if kind == "rloo" else ""
    name = script_name(stage.name, variant)
    setup = stage.setup
    deps = dependencies(setup, versions, trl=PPO_TRL if kind == "ppo" else None)
    imports, rest = _template(f"kind_{template}.py.tmpl").split("#@ common\n")
    common, body = rest.split("#@ body\n")
    launch = ""
    if setup.world_size > 1 or setup.parallel != "none":
        launch = f"    accelerate launch --config_file accelerate_config.yaml {name}   # {describe(setup)}\n"
    rl = RL_CLASSES.get(kind, ("", "", ""))
    config = stage_config(plan, stage)
    checked = ""
    if "data" in config:
        from ..datasets.wire import pasted_code

        checked = _template("checked_data.py.tmpl").replace("@@FUNCTIONS@@", pasted_code(stage.data))
    text = _template("stage_header.py.tmpl") + body + "@@CHECKED_DATA@@" + _template("priced.py.tmpl")
    text = _fill(
        text,
        {
            "DEPENDENCIES": "\n".join(f'#     "{dep}",' for dep in deps),
            "TOOL_BLOCK": PPO_TOOL_BLOCK if kind == "ppo" else "",
            "TITLE": title,
            "DESCRIPTION": description,
            "SCRIPT": name,
            "LAUNCH": launch,
            "IMPORTS": imports.rstrip("\n"),
            "COMMON": common.strip(),
            "TRL_CONFIG": trl_names.TRL_CONFIG[kind],
            "MODEL_CLASS": MODEL_CLASS.get(kind, "AutoModelForCausalLM"),
            "CHECKED": ', cfg["data"], load_checked' if "data" in config else "",
            "RL_CONFIG": rl[0],
            "RL_TRAINER": rl[1],
            "RL_TITLE": rl[2],
        },
    )
    blocks = {"CONFIG", "TRAINING", "MODEL", "LORA", "QUANT", "PRICED", "CHECKED_DATA"}
    left = {m.strip("@") for m in MARKER.findall(text)} - blocks
    if left:
        raise AssertionError(f"template markers left unfilled: {sorted(left)}")
    values = {
        "@@CONFIG@@": py_literal(config, comments=PPO_CONFIG_NOTES if kind == "ppo" else CONFIG_NOTES),
        "@@TRAINING@@": py_kwargs(trl_names.training(setup, stage.hyper.to_data(), kind), TRAINING_NOTES),
        "@@MODEL@@": py_kwargs(trl_names.model(setup, plan.trust_remote_code)),
        "@@LORA@@": py_kwargs(trl_names.lora(setup, kind, trl_names.lora_spec(plan, stage))),
        "@@QUANT@@": py_kwargs(trl_names.quant(setup)),
        "@@PRICED@@": py_literal(priced(setup)),
        "@@CHECKED_DATA@@": checked,
    }
    # Last, in one pass, so nothing inside the user's strings is ever treated as a marker.
    return re.sub("|".join(values), lambda m: values[m.group(0)], text)


def stage_scripts(stage) -> list[tuple[str, str]]:
    """(file name, kind) of each script a stage gets: PPO stages get the trl-1.12 PPO script and an RLOO one."""
    kind = stage.setup.train
    if kind == "ppo":
        return [(script_name(stage.name), "ppo"), (script_name(stage.name, "rloo"), "rloo")]
    return [(script_name(stage.name), kind)]
