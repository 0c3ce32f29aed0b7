"""Turn a Plan into a run folder: one training script per stage, the accelerate config, a README, sample data.

Scripts are composed from the files in `templates/` by concatenation and plain string substitution of
`@@NAME@@` markers: a header (PEP 723 block, docstring, imports, CONFIG), shared snippets (runtime: command line,
precision, optimizer, TrainingArguments; model: tiny model, loading, 4-bit quantization, LoRA, merging; data;
progress: JSON events, signals, checkpoints; fit: train with resume and save; rewards/online for RL kinds) and one
body per training kind (kind_*.py.tmpl: its imports, then `#@ body`, then main()).
Every user string (model id, paths, dataset names) reaches a script only inside the CONFIG dict, written as a
Python literal with `repr()`, never spliced into code. Nothing here imports torch.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import re
from importlib import resources
from pathlib import Path

from estimators.setup import lora_target_names

from ..errors import AdvisorError
from .layout import accelerate_config, describe

TEMPLATES = resources.files(__package__) / "templates"
DATA = resources.files("advisor") / "data"

# The pins of pyproject's [train] extra: used when a package is not installed where the run is generated.
FALLBACK_PINS = {
    "torch": "2.13.0",
    "transformers": "5.24.0",
    "datasets": "5.2.0",
    "accelerate": "1.15.0",
    "peft": "0.21.2",
    "trl": "1.16.0",
    "bitsandbytes": "0.50.2",
}
PPO_TRL = "1.12.0"  # the last trl with PPO (trl.experimental.ppo); later releases removed it
# In the PPO script's PEP 723 block: the pin it cannot run without. `advisor launch` (advisor/scriptenv.py) runs
# the script in an environment with that pin, built once, when the launcher's own trl differs.
PPO_TOOL_BLOCK = (
    "# [tool.advisor]\n"
    f"# exact = [\"trl\"]  # trl.experimental.ppo exists up to trl {PPO_TRL}: advisor launch builds an environment with it\n"
)
BNB_OPTIMIZERS = ("adamw8bit", "paged_adamw8bit", "lion")
BUNDLED = {"instruction": "instructions.jsonl", "preference": "preferences.jsonl", "prompt": "prompts.jsonl"}
SAMPLE_TEXT = [
    {"text": "Fine-tuning adapts a pretrained language model to a task with a small amount of data."},
    {"text": "미세 조정은 사전 학습된 언어 모델을 적은 데이터로 특정 작업에 맞추는 과정입니다."},
    {"text": "LoRA trains two small matrices per layer instead of the full weight matrix."},
]
STAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
REWARD_FN = re.compile(r".+\.py:[A-Za-z_][A-Za-z0-9_]*")  # file.py:function
MARKER = re.compile(r"@@[A-Z_]+@@")

KINDS = {
    # train kind -> (template, title, description)
    "sft": ("sft", "Supervised fine-tuning (SFT) with TRL's SFTTrainer.", "Trains the model on instruction/answer conversations; TRL applies the tokenizer's chat template."),
    "reward": (
        "reward",
        "Reward model training with TRL's RewardTrainer.",
        "A scalar head (AutoModelForSequenceClassification, num_labels=1) learns to score the chosen answer above the\nrejected one.",
    ),
    "dpo": ("dpo", "Direct preference optimisation (DPO) with TRL's DPOTrainer.", "Learns from chosen/rejected pairs without a reward model; the reference is the frozen starting model."),
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
RL_CLASSES = {"grpo": ("GRPOConfig", "GRPOTrainer", "online RL with a group baseline (GRPO)"), "rloo": ("RLOOConfig", "RLOOTrainer", "online RL with a leave-one-out baseline (RLOO)")}


def _template(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def package_versions() -> dict[str, str]:
    """Installed versions of the training stack (local tags like +cpu dropped), else pyproject's pins."""
    versions = {}
    for name, pin in FALLBACK_PINS.items():
        try:
            versions[name] = importlib.metadata.version(name).split("+")[0]
        except importlib.metadata.PackageNotFoundError:
            versions[name] = pin
    return versions


def py_literal(value, indent: int = 0, comments: dict[str, str] | None = None) -> str:
    """`value` as Python source made of literals only (dicts, lists, str via repr, numbers, bools, None)."""
    pad, inner = "    " * indent, "    " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        rows = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"CONFIG keys must be strings, got {key!r}")
            note = f"  # {comments[key]}" if comments and key in comments else ""
            rows.append(f"{inner}{key!r}: {py_literal(item, indent + 1)},{note}")
        return "{\n" + "\n".join(rows) + f"\n{pad}}}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        return "[" + ", ".join(py_literal(item, indent + 1) for item in value) + "]"
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"CONFIG values must be finite numbers, got {value!r}")
    if value is None or isinstance(value, (str, int, float, bool)):
        return repr(value)
    raise TypeError(f"CONFIG values must be literals, got {type(value).__name__}")


CONFIG_NOTES = {
    "stage": "name of this stage in the plan",
    "train": "training kind",
    "model": "hub id, local folder, or 'tiny' (a 2-layer random Llama built here, no download)",
    "base_from": "output folder of the stage this one starts from ('' = start from model)",
    "reward_model": "output folder of the reward-model stage, or a reward model folder / hub id ('' = none)",
    "reward_fn": "your reward function, 'file.py:function' (called as TRL calls reward functions)",
    "reward_check": "dataset field the completion must equal (built-in exact-match checker)",
    "dataset": "local .json/.jsonl/.csv/.parquet, a saved dataset folder, or a hub id",
    "data_format": "instruction | preference | prompt | text",
    "data": "how `advisor generate` found your dataset and loads it (load_checked below; another --dataset skips it)",
    "output_dir": "checkpoints, final model or adapter, progress.jsonl",
    "save_merged": "a later stage loads this one: also write <output_dir>/merged (adapter folded in)",
    "lora_target_modules": "'all-linear' = every linear layer of the decoder blocks",
    "setup": "the plan's Setup, the set-up the memory estimate priced (grad_ckpt resolved)",
    "hyper": "the plan's hyper-parameters",
}


def script_name(stage_name: str, variant: str = "") -> str:
    return f"train_{stage_name}_{variant}.py" if variant else f"train_{stage_name}.py"


def model_location(text: str) -> str:
    """What from_pretrained can load: the plan may name a model by its config.json (the estimator reads that
    file), but transformers loads the folder holding it, with the weights beside it."""
    path = Path(text).expanduser()
    if path.suffix.lower() == ".json" or path.is_file():
        return str(path.parent)
    return text


def stage_config(plan, stage) -> dict:
    """The CONFIG dict of a stage's script: data only."""
    setup = stage.setup
    by_name = {s.name: s for s in plan.stages}
    for ref in (stage.base_from, stage.reward_from):
        if ref and ref not in by_name:
            raise AdvisorError(f"stage '{stage.name}' refers to stage '{ref}', which the plan does not have")
    dataset = stage.dataset
    if dataset in ("", "bundled"):
        dataset = f"data/{BUNDLED.get(stage.data_format, 'sample_text.jsonl')}"
    rewards = [r for r in (stage.reward_from, stage.reward_model, stage.reward_fn, stage.reward_check) if r]
    if len(rewards) > 1:
        raise AdvisorError(f"stage '{stage.name}' has {len(rewards)} rewards ({', '.join(rewards)}); give one: a reward model, a function or a check")
    if (stage.reward_fn or stage.reward_check) and setup.train != "grpo":
        raise AdvisorError(f"stage '{stage.name}' ({setup.train}) scores with a reward model; a reward function or check is for GRPO stages")
    if stage.reward_fn and not REWARD_FN.fullmatch(stage.reward_fn):
        raise AdvisorError(f"reward function {stage.reward_fn!r}: write it as FILE.py:FUNCTION, e.g. rewards.py:score")
    setup_data = setup.to_dict()
    setup_data["grad_ckpt"] = setup.checkpointing
    targets = lora_target_names(setup)
    config = {
        "stage": stage.name,
        "train": setup.train,
        "model": "tiny" if plan.model.key == "tiny" else model_location(plan.model.hf_id or plan.model.key),
        "base_from": by_name[stage.base_from].output_dir if stage.base_from else "",
        "reward_model": by_name[stage.reward_from].output_dir if stage.reward_from else stage.reward_model,
        "trust_remote_code": bool(plan.trust_remote_code),
        "dataset": dataset,
        "data_format": stage.data_format,
        "output_dir": stage.output_dir,
        "save_merged": any(s.base_from == stage.name or s.reward_from == stage.name for s in plan.stages),
        "lora_target_modules": list(targets) if targets else "all-linear",
        "setup": setup_data,
        "hyper": stage.hyper.model_dump(mode="json"),
    }
    if setup.train == "grpo":
        config["reward_fn"] = stage.reward_fn
        config["reward_check"] = stage.reward_check
    if stage.data is not None and stage.data.path == dataset:  # checked by advisor generate --dataset (issue 17)
        d = stage.data
        config["data"] = {"path": d.path, "found": d.label, "trl_type": d.trl_type, "columns": d.columns,
                          "load": d.load, "remove_columns": d.remove_columns}
    return config


def dependencies(setup, versions: dict[str, str], trl: str | None = None) -> list[str]:
    names = ["torch", "transformers", "datasets", "accelerate", "peft", "trl"]
    if setup.method == "qlora" or setup.optimizer in BNB_OPTIMIZERS:
        names.append("bitsandbytes")
    pins = dict(versions, **({"trl": trl} if trl else {}))
    return [f"{name}=={pins[name]}" for name in names]


def render_script(plan, stage, kind: str, versions: dict[str, str]) -> str:
    template, title, description = KINDS[kind]
    variant = "rloo" if kind == "rloo" else ""
    name = script_name(stage.name, variant)
    deps = dependencies(stage.setup, versions, trl=PPO_TRL if kind == "ppo" else None)
    imports, body = _template(f"kind_{template}.py.tmpl").split("#@ body\n")
    launch = ""
    if stage.setup.world_size > 1 or stage.setup.parallel != "none":
        launch = f"    accelerate launch --config_file accelerate_config.yaml {name}   # {describe(stage.setup)}\n"
    snippets = ["header", "runtime", "model", "data", "progress"]
    snippets += {"ppo": ["rewards"], "grpo": ["fit", "rewards", "online"]}.get(template, ["fit"])
    text = "".join(_template(f"{name}.py.tmpl") for name in snippets) + body
    rl = RL_CLASSES.get(kind, ("", "", ""))
    fills = {
        "DEPENDENCIES": "\n".join(f'#     "{dep}",' for dep in deps),
        "TOOL_BLOCK": PPO_TOOL_BLOCK if kind == "ppo" else "",
        "TITLE": title,
        "DESCRIPTION": description,
        "SCRIPT": name,
        "LAUNCH": launch,
        "IMPORTS": imports.rstrip("\n"),
        "RL_CONFIG": rl[0],
        "RL_TRAINER": rl[1],
        "RL_TITLE": rl[2],
    }
    for key, value in fills.items():
        text = text.replace(f"@@{key}@@", value)
    left = set(MARKER.findall(text)) - {"@@CONFIG@@", "@@CHECKED_DATA@@"}
    if left:
        raise AssertionError(f"template markers left unfilled: {sorted(left)}")
    config = stage_config(plan, stage)
    checked = ""
    if "data" in config:
        from ..datasets.wire import pasted_code

        checked = _template("checked_data.py.tmpl").replace("@@FUNCTIONS@@", pasted_code(stage.data))
    # Last, in one pass, so nothing inside the user's strings is ever treated as a marker.
    values = {"@@CONFIG@@": py_literal(config, comments=CONFIG_NOTES), "@@CHECKED_DATA@@": checked}
    return re.sub("@@CONFIG@@|@@CHECKED_DATA@@", lambda m: values[m.group(0)], text)


def stage_scripts(stage) -> list[tuple[str, str]]:
    """(file name, kind) of each script a stage gets: PPO stages get the trl-1.12 PPO script and an RLOO one."""
    kind = stage.setup.train
    if kind == "ppo":
        return [(script_name(stage.name), "ppo"), (script_name(stage.name, "rloo"), "rloo")]
    return [(script_name(stage.name), kind)]


def _jsonl(rows) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def sample_rows(data_format: str) -> list[dict]:
    if data_format == "text":
        return SAMPLE_TEXT
    lines = (DATA / BUNDLED[data_format]).read_text(encoding="utf-8").splitlines()
    # two English and two Korean rows
    korean = [line for line in lines if re.search("[\uac00-\ud7a3]", line)]
    english = [line for line in lines if line not in korean]
    return [json.loads(line) for line in english[:2] + korean[:2]]


def render(plan, *, versions: dict[str, str] | None = None) -> dict[str, str]:
    """Every file of the run folder: relative path -> text."""
    from .readme import readme

    versions = versions or package_versions()
    names = [stage.name for stage in plan.stages]
    for name in names:
        if not STAGE_NAME.fullmatch(name):
            raise AdvisorError(f"stage name {name!r} cannot name a script: use letters, digits, '-' and '_' (at most 64)")
    if len(set(names)) != len(names):
        raise AdvisorError(f"stage names must be unique, got {', '.join(names)}")
    if not plan.stages:
        raise AdvisorError("the plan has no stages")
    files: dict[str, str] = {}
    for stage in plan.stages:
        for name, kind in stage_scripts(stage):
            files[name] = render_script(plan, stage, kind, versions)
    files["accelerate_config.yaml"] = accelerate_config(plan.stages[0].setup)
    for data_format in dict.fromkeys(stage.data_format for stage in plan.stages):
        files[f"data/sample_{data_format}.jsonl"] = _jsonl(sample_rows(data_format))
        if data_format in BUNDLED and any(s.dataset in ("", "bundled") and s.data_format == data_format for s in plan.stages):
            files[f"data/{BUNDLED[data_format]}"] = (DATA / BUNDLED[data_format]).read_text(encoding="utf-8")
    if any(s.dataset in ("", "bundled") and s.data_format == "text" for s in plan.stages):
        files["data/sample_text.jsonl"] = _jsonl(SAMPLE_TEXT)
    files["plan.toml"] = plan.to_toml()
    files["README.md"] = readme(plan, files, versions)
    return dict(sorted(files.items()))


def write_run(plan, out_dir: Path, force: bool = False, *, versions: dict[str, str] | None = None) -> list[Path]:
    """Write the run folder; an existing non-empty folder is left alone unless `force`."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise AdvisorError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise AdvisorError(f"{out_dir} exists and is not empty; pass --force to overwrite its files")
    files = render(plan, versions=versions)
    written = []
    for rel, text in files.items():
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
