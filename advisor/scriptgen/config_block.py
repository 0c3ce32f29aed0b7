"""The CONFIG block of a stage script: the stage's model, data and folders, and what common.py reads of the set-up
that is no TRL keyword, with a comment per key. Its own module because the scripts (scripts.py) write it and tests
read it back field by field against the plan."""

from __future__ import annotations

import re
from pathlib import Path

from estimators.kind_models import trained_model

from ..errors import AdvisorError
from . import trl_names

BUNDLED = {"instruction": "instructions.jsonl", "preference": "preferences.jsonl", "prompt": "prompts.jsonl"}
REWARD_FN = re.compile(r".+\.py:[A-Za-z_][A-Za-z0-9_]*")  # file.py:function
# The comment written after each key of CONFIG.
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
        config["data"] = {
            "path": d.path,
            "found": d.label,
            "trl_type": d.trl_type,
            "columns": d.columns,
            "load": d.load,
            "remove_columns": d.remove_columns,
        }
    config["output_dir"] = stage.output_dir
    config["save_merged"] = any(s.base_from == stage.name or s.reward_from == stage.name for s in plan.stages)
    if setup.train in ("grpo", "ppo"):
        config["max_length"] = setup.seq_len
    config["compute_dtype"] = trl_names.compute_dtype(setup)
    if setup.adaptation == "qlora":
        config["kbit_upcast"] = setup.kbit_upcast  # as it runs (estimators/effective.py): read, never recomputed
        config["kbit_device_map"] = setup.parallel in ("none", "ddp")
    return config
