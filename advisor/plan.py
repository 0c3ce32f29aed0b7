"""The Plan: what both front ends produce and what the estimator, generator and launcher consume.

A Plan is data. It is saved as TOML (`advisor advise --save plan.toml`) and read back with validation, so a
hand-edited plan file gets clear errors. The training knobs of each stage are an `estimators.Setup`, the very
object the memory model priced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from estimators.setup import Setup

from .errors import AdvisorError

PLAN_SCHEMA = "advisor.plan/1"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelRef(_Model):
    key: str  # catalog key, "tiny", or the text the user gave (path / hub id)
    name: str
    hf_id: str = ""  # what from_pretrained loads; a local path for local models
    resolved_from: str = ""
    params_total: int = 0


class Hardware(_Model):
    gpu: str  # id from the GPU table, or "<N>GB"
    gpu_name: str = ""
    memory_gib: float
    count: int = 1
    nodes: int = 1
    bf16: bool = True


class Hyper(_Model):
    learning_rate: float
    epochs: float = 1.0
    max_steps: int = -1  # -1: run the epochs
    warmup_ratio: float = 0.03
    lr_scheduler: str = "cosine"
    weight_decay: float = 0.0
    seed: int = 42
    logging_steps: int = 1
    save_steps: int = 50
    beta: float = 0.1  # DPO / PPO KL coefficient


class Stage(_Model):
    """One training run. RLHF has three (SFT -> reward model -> PPO) wired by their output directories."""

    name: str  # unique within the plan, used for the script and output folder: "sft", "reward", "ppo"
    setup: Setup
    hyper: Hyper
    dataset: str  # local file or hub id
    data_format: Literal["instruction", "preference", "prompt", "text"]
    output_dir: str
    base_from: str = ""  # name of the stage whose output model this stage starts from
    reward_from: str = ""  # name of the stage whose output is the reward model (PPO / GRPO)


class Reason(_Model):
    rule: str  # rule id in rules/*.toml, or "estimate" for memory-model reasoning
    en: str
    ko: str = ""


class Alternative(_Model):
    method: str
    why_not_en: str
    why_not_ko: str = ""
    rule: str = ""


class EstimateSummary(_Model):
    peak_allocated_gib: float
    peak_reserved_gib: float
    device_gib: float
    peak_phase: str
    fits: bool
    headroom_gib: float
    rule_of_thumb_gib: float | None = None  # the source document's §5 figure, where it applies
    rule_of_thumb_note: str = ""


class Plan(_Model):
    schema_: str = Field(default=PLAN_SCHEMA, alias="schema")
    method: str  # sft | rlhf | dpo | grpo | ...
    adaptation: Literal["full", "lora", "qlora"]
    model: ModelRef
    hardware: Hardware
    stages: list[Stage]
    trust_remote_code: bool = False
    reasons: list[Reason] = []
    alternatives: list[Alternative] = []
    warnings: list[str] = []
    estimate: EstimateSummary | None = None
    answers: dict = {}

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise AdvisorError(f"plan has no stage '{name}'; stages: {', '.join(s.name for s in self.stages)}")

    def to_data(self) -> dict:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def to_toml(self) -> str:
        import tomli_w

        return tomli_w.dumps(self.to_data())

    @classmethod
    def from_data(cls, data: dict, origin: str = "plan") -> "Plan":
        try:
            plan = cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise AdvisorError(f"{origin}: {where}: {first['msg']} ({exc.error_count()} problem(s) in all)") from None
        for stage in plan.stages:
            stage.setup.validated()
        return plan


def save_plan(plan: Plan, path: Path, force: bool = False) -> Path:
    if path.exists() and not force:
        raise AdvisorError(f"{path} exists; pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(plan.to_toml(), encoding="utf-8")
    return path


def load_plan(path: Path) -> Plan:
    from .tomlfile import read_toml

    return Plan.from_data(read_toml(path, "plan file"), origin=str(path))
