"""Turn a Plan into a run folder: `common.py` (the helpers every stage shares, written once), one training script per
stage, the accelerate config, a README, sample data.

Both are composed from the files in `templates/` by concatenation and plain string substitution of `@@NAME@@`
markers. common.py: common_header, runtime (command line, overrides, this device), model (tiny model, loading,
4-bit quantization, merging), data, progress (JSON events, signals), fit (train with resume and save), rewards
(reward model of online RL); it is the same in every run folder. A stage script: stage_header (PEP 723 block,
docstring, imports, `from common import ...`, the CONFIG / TRAINING / MODEL / LORA / QUANT blocks), the kind's
body (kind_*.py.tmpl: its imports, `#@ common` the names it takes from common.py, `#@ body` its main()), then the
PRICED provenance block. The blocks are the plan in TRL's names (trl_names.py), translated here, once.
Every user string (model id, paths, dataset names) reaches a script only inside those literals, written with
`repr()`, never spliced into code. Nothing here imports torch.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

from estimators.kind_models import trained_model

from ..errors import AdvisorError
from . import trl_names
from .layout import accelerate_config, describe
from .literals import py_kwargs, py_literal
from .pins import package_versions

TEMPLATES = resources.files(__package__) / "templates"
DATA = resources.files("advisor") / "data"

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
    "max_length": "prompt + completion tokens: longer prompts are left out",
    "compute_dtype": "matmul dtype: merged copies, reward and value models load in it",
    "kbit_upcast": "peft prepare_model_for_kbit_training: fp32 copies of the non-quantized weights",
    "kbit_device_map": "each process loads its 4-bit copy on its own GPU (False: FSDP / ZeRO place the shards)",
}
PPO_CONFIG_NOTES = dict(CONFIG_NOTES, max_length="prompt + completion tokens: longer prompts are cut from the left")
TRAINING_NOTES = {"warmup_steps": "below 1: a fraction of the steps", "disable_tqdm": "progress goes out as JSON lines (common.py Progress)"}
MODEL_CLASS = {"reward": "AutoModelForSequenceClassification"}  # the rest: AutoModelForCausalLM
COMMON_SNIPPETS = ("common_header", "runtime", "model", "data", "progress", "fit", "rewards")


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
    """The CONFIG dict of a stage's script: its model, data and folders, and what common.py reads of the set-up
    that is no TRL keyword (only what the kind uses)."""
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
    model = trained_model(setup.train, plan.model, stage.reward_value_model)  # RLHF's smaller reward model: its own weights
    config = {
        "stage": stage.name,
        "train": setup.train,
        "model": "tiny" if model.key == "tiny" else model_location(model.hf_id or model.key),
        "base_from": by_name[stage.base_from].output_dir if stage.base_from else "",
    }
    if setup.train in ("grpo", "ppo"):
        config["reward_model"] = by_name[stage.reward_from].output_dir if stage.reward_from else stage.reward_model
    if setup.train == "grpo":
        config["reward_fn"] = stage.reward_fn
        config["reward_check"] = stage.reward_check
    config["dataset"] = dataset
    config["data_format"] = stage.data_format
    if stage.data is not None and stage.data.path == dataset:  # checked by advisor generate --dataset (issue 17)
        d = stage.data
        config["data"] = {"path": d.path, "found": d.label, "trl_type": d.trl_type, "columns": d.columns,
                          "load": d.load, "remove_columns": d.remove_columns}
    config["output_dir"] = stage.output_dir
    config["save_merged"] = any(s.base_from == stage.name or s.reward_from == stage.name for s in plan.stages)
    if setup.train in ("grpo", "ppo"):
        config["max_length"] = setup.seq_len
    config["compute_dtype"] = trl_names.compute_dtype(setup)
    if setup.adaptation == "qlora":
        config["kbit_upcast"] = setup.kbit_upcast  # as it runs (estimators/effective.py): read, never recomputed
        config["kbit_device_map"] = setup.parallel in ("none", "ddp")
    return config


def priced(setup) -> dict:
    """The PRICED block: the plan's Setup as the estimate priced it, gradient checkpointing resolved."""
    data = setup.to_dict()
    data["grad_ckpt"] = setup.checkpointing
    return data


def dependencies(setup, versions: dict[str, str], trl: str | None = None) -> list[str]:
    names = ["torch", "transformers", "datasets", "accelerate", "peft", "trl"]
    if setup.adaptation == "qlora" or setup.optimizer in BNB_OPTIMIZERS or setup.galore:  # galore_torch imports bitsandbytes
        names.append("bitsandbytes")
    if setup.galore:
        names.append("galore-torch")
    pins = dict(versions, **({"trl": trl} if trl else {}))
    return [f"{name}=={pins[name]}" for name in names]


def _fill(text: str, fills: dict[str, str]) -> str:
    for key, value in fills.items():
        text = text.replace(f"@@{key}@@", value)
    return text


def render_common() -> str:
    """common.py: the same text for every plan."""
    return "".join(_template(f"{name}.py.tmpl") for name in COMMON_SNIPPETS)


def render_script(plan, stage, kind: str, versions: dict[str, str]) -> str:
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
    text = _fill(text, {
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
    })
    blocks = {"CONFIG", "TRAINING", "MODEL", "LORA", "QUANT", "PRICED", "CHECKED_DATA"}
    left = {m.strip("@") for m in MARKER.findall(text)} - blocks
    if left:
        raise AssertionError(f"template markers left unfilled: {sorted(left)}")
    values = {
        "@@CONFIG@@": py_literal(config, comments=PPO_CONFIG_NOTES if kind == "ppo" else CONFIG_NOTES),
        "@@TRAINING@@": py_kwargs(trl_names.training(setup, stage.hyper.model_dump(mode="json"), kind), TRAINING_NOTES),
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
    files: dict[str, str] = {"common.py": render_common()}
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
