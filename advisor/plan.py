"""The Plan: what both front ends produce and what the estimator, generator and launcher consume.

A Plan is data: plain dataclasses, built by the planner without any validation library, so `advisor advise`
never imports pydantic (issue 14 §8: it was 40 % of advise's start-up). It is saved as TOML
(`advisor advise --save plan.toml`) and read back through pydantic (`Plan.from_data`), so a hand-edited plan file
gets clear errors. The training knobs of each stage are an `estimators.Setup`, the very object the memory model
priced.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass, replace
from functools import cache
from pathlib import Path
from typing import Literal

from estimators.setup import Setup, field_names

from .errors import AdvisorError

Adaptation = Literal["full", "lora", "qlora"]
DataFormat = Literal["instruction", "preference", "prompt", "text"]

PLAN_SCHEMA = "advisor.plan/2"  # /2: `pipeline` and each setup's `adaptation` (/1 wrote `method` for both); both are read


class _Model:
    """What every part of a plan shares: copies with changes, and its TOML/JSON form."""

    __pydantic_config__ = {"extra": "forbid"}  # read by pydantic when a plan file is validated: unknown keys are errors

    def with_(self, **changes):
        return replace(self, **changes)

    def to_data(self) -> dict:
        """The saved form: fields in order, None left out, floats as floats (pydantic's json dump of before)."""
        return _dumped(self)


def _dumped(value):
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _float(f.type, _dumped(v)) for f in fields(value) if (v := getattr(value, f.name)) is not None}
    if isinstance(value, (list, tuple)):
        return [_dumped(v) for v in value]
    if isinstance(value, dict):
        return {k: _dumped(v) for k, v in value.items()}
    return value


def _float(annotation, value):
    """A float field given an int in code (memory_gib=24) is saved as 24.0, as a validated plan would hold it."""
    return float(value) if annotation in ("float", "float | None") and type(value) is int else value



@dataclass(kw_only=True)  # built by keyword: kw_only lets defaults come before required fields
class ModelRef(_Model):
    key: str  # catalog key, "tiny", or the text the user gave (path / hub id)
    name: str
    hf_id: str = ""  # what from_pretrained loads; a local path for local models
    resolved_from: str = ""
    params_total: int = 0
    # The ModelSpec numbers the plan was priced on (advisor/planning.py spec_data): with them a plan moved to
    # another machine is priced and generated again without the model's config.json. {} in plans from before.
    spec: dict = field(default_factory=dict)


@dataclass(kw_only=True)
class Hardware(_Model):
    gpu: str  # id from the GPU table, or "<N>GB"
    gpu_name: str = ""
    memory_gib: float
    count: int = 1
    nodes: int = 1
    bf16: bool = True


@dataclass(kw_only=True)
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


@dataclass(kw_only=True)
class StageData(_Model):
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
class StageMemory(_Model):
    """One stage's memory as `advisor advise` priced it on the plan's card (estimators/result.py Estimate), so the
    printer, the wizard and the run README read the figures instead of pricing the stage again."""

    peak_allocated_gib: float  # GiB the step allocates through PyTorch at its peak
    peak_reserved_gib: float  # GiB the caching allocator reserves then
    device_gib: float  # GiB on the card (nvidia-smi): reserved plus the CUDA context
    peak_phase: str
    fits: bool  # with the plan's margin kept free (EstimateSummary.margin_note)


@dataclass(kw_only=True)
class Stage(_Model):
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
class Reason(_Model):
    rule: str  # rule id in rules/*.toml, or "estimate" for memory-model reasoning
    en: str
    ko: str = ""


@dataclass(kw_only=True)
class Alternative(_Model):
    method: str  # the choice not taken: a pipeline (dpo, rlhf) or an adaptation (full, qlora)
    why_not_en: str
    why_not_ko: str = ""
    rule: str = ""


def in_lang(en: str, ko: str | None, lang: str) -> str:
    """What a reader of `lang` sees of a text kept in both languages: English where there is no Korean."""
    return ko if lang == "ko" and ko else en


@dataclass(kw_only=True, frozen=True)
class Note(_Model):
    """A warning in both languages (rules/messages.toml); the renderer picks one with `text`."""

    en: str
    ko: str = ""

    def text(self, lang: str) -> str:
        return in_lang(self.en, self.ko, lang)


@dataclass(kw_only=True)
class EstimateSummary(_Model):
    peak_allocated_gib: float
    peak_reserved_gib: float
    device_gib: float
    peak_phase: str
    fits: bool
    headroom_gib: float
    rule_of_thumb_gib: float | None = None  # the source document's §5 figure, where it applies
    rule_of_thumb_note: str = ""
    # The notes are English; each *_ko is its Korean (None in a plan built by hand or saved before: left out of the file).
    rule_of_thumb_note_ko: str | None = None
    margin_gib: float = 0.0  # kept free besides the estimate (estimators/margin.py); headroom_gib is after it
    margin_note: str = ""  # "fits with 2.1 GiB to spare, after the 1.6 GiB margin kept for estimate error and the display"
    margin_note_ko: str | None = None
    paged_gib: float = 0.0  # paged optimizer states in CUDA unified memory, outside device_gib
    paged_spilled_gib: float = 0.0  # the part the card's free memory cannot hold: it pages over PCIe every step
    paged_note: str = ""
    paged_note_ko: str | None = None
    margin_text: str = "auto"  # --margin as given ("auto": estimate error + display); what-ifs re-judge with it

    def note(self, name: str, lang: str) -> str:
        """One of the notes ("margin_note", "paged_note", "rule_of_thumb_note") as a reader of `lang` sees it."""
        return in_lang(getattr(self, name), getattr(self, f"{name}_ko"), lang)


@dataclass(kw_only=True)
class StageTime(_Model):
    """One stage's predicted wall time and cost on the plan's GPUs (estimators/time_plan.plan_time)."""

    name: str
    gpus: int = 1
    tokens_per_s_per_gpu: float
    hours: float  # h, wall clock; hours_low..hours_high is the time model's band
    hours_low: float
    hours_high: float
    usd: float | None = None  # None: the card has no price


@dataclass(kw_only=True)
class TimeSummary(_Model):
    """`advisor advise`'s time and cost: every stage priced in hours and dollars for the data size it states."""

    stages: list[StageTime]
    hours: float  # h (wall clock), all stages one after the other
    hours_low: float
    hours_high: float
    usd: float | None = None  # USD at price_usd_per_gpu_hour x GPUs x hours
    price_usd_per_gpu_hour: float | None = None
    price_source: str = ""
    examples: int  # examples (pairs, prompts) each stage is priced for
    examples_assumed: bool = False  # True: the user gave no data size; `assumption` says what was assumed
    mean_tokens: int  # tokens per example priced (the sequence length: an upper bound)
    gpu_name: str = ""  # the card priced
    line: str = ""  # "3 stages, ~41.0 h, ~$330 on 1x NVIDIA A100 80GB"
    assumption: str = ""  # English; assumption_ko its Korean
    assumption_ko: str | None = None


@dataclass(kw_only=True)
class Plan(_Model):
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
