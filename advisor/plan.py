"""The Plan: what both front ends produce and what the estimator, generator and launcher consume.

A Plan is data: plain dataclasses, built by the planner without any validation library, so `advisor advise`
never imports pydantic (issue 14 §8: it was 40 % of advise's start-up). It is saved as TOML
(`advisor advise --save plan.toml`) and read back through pydantic (`Plan.from_data`), so a hand-edited plan file
gets clear errors. The training knobs of each stage are an `estimators.Setup`, the very object the memory model
priced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

from estimators.setup import Setup, field_names

from .errors import AdvisorError
from .plan_part import PlanPart
from .plan_priced import EstimateSummary, Note, StageMemory, TimeSummary

Adaptation = Literal["full", "lora", "qlora"]
DataFormat = Literal["instruction", "preference", "prompt", "text"]

PLAN_SCHEMA = "advisor.plan/2"  # /2: `pipeline` and each setup's `adaptation` (/1 wrote `method` for both); both are read


@dataclass(kw_only=True)  # built by keyword: kw_only lets defaults come before required fields
class ModelRef(PlanPart):
    key: str  # catalog key, "tiny", or the text the user gave (path / hub id)
    name: str
    hf_id: str = ""  # what from_pretrained loads; a local path for local models
    resolved_from: str = ""
    params_total: int = 0
    # The ModelSpec numbers the plan was priced on (advisor/planning.py spec_data): with them a plan moved to
    # another machine is priced and generated again without the model's config.json. {} in plans from before.
    spec: dict = field(default_factory=dict)


@dataclass(kw_only=True)
class Hardware(PlanPart):
    gpu: str  # id from the GPU table, or "<N>GB"
    gpu_name: str = ""
    memory_gib: float
    count: int = 1
    nodes: int = 1
    bf16: bool = True


@dataclass(kw_only=True)
class Hyper(PlanPart):
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


@dataclass(kw_only=True)
class StageData(PlanPart):
    """The user's dataset as `advisor data check` read it for this stage (issue 17): what the script loads and the
    mapping it applies, so `advisor generate --plan` writes the same loading code without reading the data again."""

    path: str  # absolute, as the script loads it
    type: str  # TRL type (advisor/datasets/detect.py TYPES)
    label: str = ""
    form: str = "standard"  # standard | conversational
    format: str = ""  # community format it came in: alpaca, sharegpt, ... ("" = TRL's own columns)
    mapping: dict[str, str] = field(default_factory=dict)  # TRL column -> the user's column
    kind: str  # the training kind the mapping is for
    trl_type: str  # what the trainer gets after the mapping
    columns: list[str] = field(default_factory=list)  # the columns the trainer reads
    function: str = ""  # Python source of to_trl(row) (advisor/datasets/spec.py), "" = the columns are used as they are
    filter: str = ""  # Python source of a row filter (a lambda), "" = every row
    remove_columns: list[str] = field(default_factory=list)
    load: dict = field(default_factory=dict)  # the `datasets` call that reads the same rows (spec.loader_spec)
    rows: int = 0  # usable rows
    seq_len: int = 0  # recommended: the shortest that keeps `keep` of the rows whole, in tokens
    keep: float = 0.99
    packing: bool = False
    packing_reason: str = ""
    tokens: dict = field(default_factory=dict)  # p50/p90/p99/max of the whole sequence (tokens), tokens_per_epoch, counter
    verdict: str = ""


@dataclass(kw_only=True)
class Stage(PlanPart):
    """One training run. RLHF has three (SFT -> reward model -> PPO) wired by their output directories."""

    name: str  # unique within the plan, used for the script and output folder: "sft", "reward", "ppo"
    setup: Setup
    hyper: Hyper
    dataset: str  # local file or hub id
    data_format: DataFormat
    output_dir: str
    base_from: str = ""  # name of the stage whose output model this stage starts from
    reward_from: str = ""  # name of the stage whose output is the reward model (PPO / GRPO)
    # GRPO's reward when no stage trains one (at most one; none = the script's placeholder length reward, said loudly)
    reward_model: str = ""  # a reward model to score completions: folder or hub id
    reward_fn: str = ""  # the user's Python reward function: "file.py:function"
    reward_check: str = ""  # the built-in checker: exact match of the completion with this dataset field
    data: StageData | None = None  # the checked dataset (advisor generate --dataset): its loading code and mapping
    memory: StageMemory | None = None  # as advise priced it (None: a plan built from flags, not sized by advise)
    # RLHF's reward/value model when it is not the policy (issue 16, the InstructGPT practice: a smaller model of the
    # policy's family): the reward stage trains it from its own weights, PPO scores with it and starts its value model
    # from it; memory and time above are priced with it. None: the policy's architecture (the reward stage starts from SFT).
    reward_value_model: ModelRef | None = None


@dataclass(kw_only=True)
class Reason(PlanPart):
    rule: str  # rule id in rules/*.toml, or "estimate" for memory-model reasoning
    en: str
    ko: str = ""


@dataclass(kw_only=True)
class Alternative(PlanPart):
    method: str  # the choice not taken: a pipeline (dpo, rlhf) or an adaptation (full, qlora)
    why_not_en: str
    why_not_ko: str = ""
    rule: str = ""


@dataclass(kw_only=True)
class Plan(PlanPart):
    schema: str = PLAN_SCHEMA
    # sft | rlhf | dpo | grpo | ... (planning.PIPELINES; --method-kind); plans saved before the rename call it `method`
    pipeline: str
    adaptation: Adaptation  # every stage's setup.adaptation: one adaptation per plan
    model: ModelRef
    hardware: Hardware
    stages: list[Stage]
    trust_remote_code: bool = False
    reasons: list[Reason] = field(default_factory=list)
    alternatives: list[Alternative] = field(default_factory=list)
    warnings: list[Note] = field(default_factory=list)
    estimate: EstimateSummary | None = None
    time: TimeSummary | None = None  # None: the card has no speed figures, or nothing fits
    answers: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        """The plan's adaptation is the one its stages train with: a stage that says otherwise is refused."""
        for stage in self.stages:
            if stage.setup.adaptation != self.adaptation:
                raise ValueError(f"stage '{stage.name}' uses {stage.setup.adaptation}, the plan {self.adaptation}: one adaptation per plan")

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise AdvisorError(f"plan has no stage '{name}'; stages: {', '.join(s.name for s in self.stages)}")

    def to_toml(self) -> str:
        import tomli_w

        return tomli_w.dumps(self.to_data())

    @classmethod
    def from_data(cls, data: dict, origin: str = "plan") -> "Plan":
        """A plan file's data, validated: the one place pydantic is imported (the planner builds plans directly)."""
        from pydantic import ValidationError

        try:
            plan = _validator().validate_python(as_current(data))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])  # "" for a rule of the whole plan (one adaptation)
            head = f"{origin}: {where}" if where else origin
            said = "unknown key (check its spelling and its table)" if first["type"] == "unexpected_keyword_argument" else first["msg"]
            raise AdvisorError(f"{head}: {said} ({exc.error_count()} problem(s) in all)") from None
        return plan  # each stage's Setup checked itself when pydantic built it


@cache
def _validator():
    from pydantic import TypeAdapter

    return TypeAdapter(Plan)


def as_current(data: dict) -> dict:
    """An older plan file read into today's fields: advisor.plan/1 named the pipeline and each setup's adaptation
    `method`, and kept warnings as plain strings. Anything else is left for the validator to judge."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    if isinstance(data.get("schema"), str) and data["schema"].startswith("advisor.plan/"):
        data["schema"] = PLAN_SCHEMA
    if "pipeline" not in data and "method" in data:
        data["pipeline"] = data.pop("method")
    if isinstance(data.get("warnings"), list):
        data["warnings"] = [{"en": w} if isinstance(w, str) else w for w in data["warnings"]]
    if isinstance(data.get("stages"), list):
        data["stages"] = [_stage_as_current(s) for s in data["stages"]]
    return data


def _stage_as_current(stage):
    if isinstance(stage, dict) and isinstance(stage.get("setup"), dict):
        return {**stage, "setup": field_names(stage["setup"])}
    return stage


def save_plan(plan: Plan, path: Path, force: bool = False) -> Path:
    if path.exists() and not force:
        raise AdvisorError(f"{path} exists; pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(plan.to_toml(), encoding="utf-8")
    return path


def load_plan(path: Path) -> Plan:
    from .tomlfile import read_toml

    return Plan.from_data(read_toml(path, "plan file"), origin=str(path))
