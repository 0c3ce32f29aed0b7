"""The wizard's calls into the advisor, pure functions safe in worker threads: the plan for its answers
(`advisor.advice.advise`), a stage's memory (`estimators.pricing.estimate`) and what-ifs on it, the cheapest fix
(`estimators.fit.fit_report`), and the run folder's files (`advisor.scriptgen`). Heavy imports stay inside."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from estimators.fit import Fix
    from estimators.setup import Setup

    from ..plan import Plan

# knobs that apply to the whole plan: a what-if on one stage changes every stage
PLAN_WIDE = ("adaptation", "precision", "quant_type", "double_quant", "gpus", "nodes", "parallel")


def make_plan(raw: Mapping[str, Any]) -> "Plan":
    from ..advice.advise import advise
    from ..answers import Answers

    return advise(Answers.from_mapping(dict(raw), origin="wizard"))


def plan_or_error(raw: Mapping[str, Any]) -> tuple["Plan | None", str]:
    """make_plan for a worker: (the plan, "") or (None, the one-line error a user's answers caused)."""
    from ..errors import AdvisorError

    try:
        return make_plan(raw), ""
    except (AdvisorError, ValueError) as exc:
        return None, str(exc)


def model_spec_of(plan: "Plan"):
    """The ModelSpec the plan was priced on (kept in the plan: no second resolution of the model)."""
    from ..planning import plan_spec

    return plan_spec(plan)


def capacity_bytes(plan: "Plan") -> float:
    from estimators.dtypes import GIB

    return plan.hardware.memory_gib * GIB


def stage_estimate(plan: "Plan", stage: str):
    from estimators import estimate

    from ..planning import stage_models

    spec, reward = stage_models(plan, plan.stage(stage))  # RLHF's smaller reward/value model, when it has one
    return estimate(spec, plan.stage(stage).setup, reward)


def largest_stage(plan: "Plan") -> str:
    """The stage that needs the most memory: the one the memory step opens on."""
    priced = {s.name: s.memory.device_gib for s in plan.stages if s.memory is not None}
    if len(priced) == len(plan.stages):  # as advise priced them: nothing to price again
        return max(priced, key=priced.__getitem__)
    return max(plan.stages, key=lambda s: stage_estimate(plan, s.name).device_bytes).name


@dataclass(frozen=True)
class MemoryView:
    """One stage's estimate, ready to draw: bytes per category, plus what the card adds on top."""

    stage: str
    segments: dict[str, int]  # category -> bytes at the peak; "overhead": allocator rounding + CUDA context
    device: int
    capacity: float
    phase: str
    gpu: str
    warnings: tuple[str, ...]
    margin: int = 0  # kept free besides the estimate (estimators/margin.py: estimate error, the display)
    kept: Any = None  # estimators.margin.Kept: the margin by part, for the words
    paged: Any = None  # estimators.margin.Paged: paged optimizer states and where they live, or None

    @property
    def fits(self) -> bool:
        return self.device + self.margin <= self.capacity

    @property
    def headroom(self) -> float:
        """What is left after the estimate and the margin."""
        return self.capacity - self.device - self.margin


def memory_view(plan: "Plan", stage: str) -> MemoryView:
    from estimators.margin import paged_placement

    from ..advice.summary import plan_margin

    est = stage_estimate(plan, stage)
    segments = dict(est.categories())
    segments["overhead"] = est.device_bytes - est.peak_allocated
    capacity = capacity_bytes(plan)
    margin = plan_margin(plan)
    kept = margin.kept(est, capacity)
    return MemoryView(
        stage,
        segments,
        est.device_bytes,
        capacity,
        est.peak_phase,
        plan.hardware.gpu_name or plan.hardware.gpu,
        est.warnings,
        kept.total,
        kept,
        paged_placement(est, capacity, margin, _pcie(plan)),
    )


def _pcie(plan: "Plan") -> float | None:
    from estimators.errors import EstimateError
    from estimators.gpus import find_gpu

    try:
        return find_gpu(plan.hardware.gpu).pcie_gbs
    except EstimateError:
        return None


def with_stage_setup(plan: "Plan", stage: str, setup: "Setup") -> "Plan":
    """The plan with `stage` trained by `setup`; a plan-wide knob (adaptation, GPUs, layout) that changed goes to
    every stage. The estimate summary is recomputed for the new set-ups."""
    from estimators.effective import effective_setup

    from ..planning import default_hyper

    spec = model_spec_of(plan)
    before = plan.stage(stage).setup
    wide = {k: getattr(setup, k) for k in PLAN_WIDE if getattr(setup, k) != getattr(before, k)}  # only what changed
    stages = []
    for s in plan.stages:
        new = effective_setup(spec, setup if s.name == stage else s.setup.with_(**wide))  # stored as it runs, as advise does
        hyper = s.hyper if new.adaptation == s.setup.adaptation else default_hyper(new.train, new.adaptation)
        stages.append(s.with_(setup=new, hyper=hyper))
    hardware = plan.hardware.with_(count=setup.gpus, nodes=setup.nodes)
    new_plan = plan.with_(stages=stages, adaptation=setup.adaptation, hardware=hardware)
    return _priced(new_plan, keep_note=setup.adaptation == plan.adaptation)


def _priced(plan: "Plan", keep_note: bool) -> "Plan":
    """The plan with each stage's memory and the summary priced for its current set-ups (after a what-if)."""
    from ..advice.summary import judged_memory

    ests = {s.name: stage_estimate(plan, s.name) for s in plan.stages}
    stages = [s.with_(memory=judged_memory(plan, ests[s.name])) for s in plan.stages]
    return plan.with_(stages=stages, estimate=summarize(plan, keep_note, ests))


def summarize(plan: "Plan", keep_note: bool = True, ests: dict | None = None):
    """The plan's EstimateSummary after a what-if change: the same fields advise() fills, read off the estimator
    for every stage (the largest stage is the peak). The §5 rule-of-thumb figure comes from advisor/advice/summary.py; its note
    described the advised set-up, so it is kept only while the adaptation is unchanged."""
    from ..advice.summary import estimate_summary, plan_margin, rule_of_thumb

    ests = ests or {s.name: stage_estimate(plan, s.name) for s in plan.stages}
    old = plan.estimate
    rot = rule_of_thumb(plan.adaptation, plan.model.params_total)[1] if plan.model.params_total else None
    note = (old.rule_of_thumb_note, old.rule_of_thumb_note_ko) if old is not None and keep_note else ("", "")
    return estimate_summary(ests, capacity_bytes(plan), round(rot, 2) if rot is not None else None, note, plan_margin(plan), pcie_gbs=_pcie(plan))


def capped_knob(plan: "Plan", field_name: str, value: Any, lang: str) -> tuple[Any, str]:
    """A what-if value as advise would plan it: a sequence length past the model's positions is capped there
    (advisor.advice.context.capped_seq, the one rule), with the sentence that says so in `lang` ("" when unchanged)."""
    if field_name != "seq_len":
        return value, ""
    from ..advice.context import capped_seq
    from ..plan_priced import in_lang

    value, note = capped_seq(model_spec_of(plan), value)
    return value, in_lang(*note, lang) if note else ""


def knob_setup(setup: "Setup", field_name: str, value: Any) -> "Setup":
    """`setup` with one what-if knob changed; keeps the combination valid (QLoRA computes in bf16/fp16)."""
    changes: dict[str, Any] = {field_name: value}
    if field_name == "adaptation" and value == "qlora" and setup.precision == "fp32":
        changes["precision"] = "bf16"
    if field_name == "gpus" and value > 1 and setup.parallel == "none":
        changes["parallel"] = "ddp"
    if field_name == "gpus" and value == 1 and setup.nodes == 1:
        changes["parallel"] = "none"
    return setup.with_(**changes)


def cheapest_fix(plan: "Plan", stage: str, effective_batch: int | None = None) -> "Fix | None":
    """The solver's first (cheapest) suggestion for `stage`, or None when it already fits or nothing helps. The
    fix keeps `effective_batch` (micro-batch x accumulation x GPUs; default: the stage's own) and the plan's margin."""
    from estimators.fit import fit_report

    from ..advice.summary import plan_margin
    from ..planning import stage_models

    spec, reward = stage_models(plan, plan.stage(stage))  # RLHF's smaller reward/value model, when it has one
    report = fit_report(spec, plan.stage(stage).setup, capacity_bytes(plan), plan_margin(plan), effective_batch, reward)
    if report.fits or not report.fixes:
        return None
    return report.fixes[0]


def render_files(plan: "Plan") -> dict[str, str]:
    from ..scriptgen import render

    return dict(render(plan))


def write_run(plan: "Plan", run_dir: str, force: bool = False) -> Path:
    from ..scriptgen import write_run as _write

    result = _write(plan, Path(run_dir), force=force)
    return Path(result) if isinstance(result, (str, Path)) else Path(run_dir)
