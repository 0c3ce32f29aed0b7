"""What the wizard remembers, and the thin calls it makes into the advisor. No Textual here.

The wizard is a view: answers go through `advisor.questions` (the declarations the CLI flags use), the plan comes
from `advisor.core.advise`, memory from `estimators.pricing.estimate`, fixes from `estimators.fit.fit_report`, files from
`advisor.scriptgen`. This module only keeps the user's raw answers and the current Plan, and hands both around.
Heavy modules (pydantic through advisor.plan, the generator) are imported inside the functions that need them,
so the first screen paints before they load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import AdvisorError
from ..questions import Question, questions

if TYPE_CHECKING:
    from estimators.fit import Fix
    from estimators.setup import Setup

    from ..plan import Plan

STEPS = ("goal", "data", "resources", "recommend", "memory", "script", "finish")
QUESTION_STEPS = ("goal", "data", "resources")
# Which step asks which question (by id). A question declared later and not listed here is asked on the
# resources step, so a new declaration shows up in the wizard without touching it.
STEP_QUESTIONS = {
    "goal": ("goal",),
    "data": ("data", "data_count"),
    "resources": ("gpu", "model", "gpu_count", "time_budget_hours", "budget_usd", "priority", "seq_len"),
}
# The what-if controls on the memory step: Setup knobs from advisor.knobs.KNOBS, in this order.
WHATIF_KNOBS = ("micro_batch", "seq_len", "lora_r", "grad_ckpt", "optimizer", "method", "quant_type", "gpus", "parallel")
# Knobs that belong to the whole plan (one adaptation per plan, one layout per machine): changing them on one
# stage changes every stage.
PLAN_WIDE = ("method", "precision", "quant_type", "double_quant", "gpus", "nodes", "parallel")
DEFAULT_RUN_DIR = "runs/wizard"


def questions_for(step: str) -> list[Question]:
    listed = {qid for ids in STEP_QUESTIONS.values() for qid in ids}
    order = {qid: i for i, qid in enumerate(STEP_QUESTIONS.get(step, ()))}
    chosen = [q for q in questions() if q.id in order]
    chosen.sort(key=lambda q: order[q.id])
    if step == "resources":
        chosen += [q for q in questions() if q.id not in listed]
    return chosen


def _blank(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip()) or (isinstance(raw, (list, tuple)) and not raw)


def check_answers(raw: Mapping[str, Any], origin: str = "answers") -> dict[str, Any]:
    """Pre-filled answers (a TOML file, flags): unknown ids and invalid values raise AdvisorError; missing
    required ones are fine (the wizard asks for them)."""
    known = {q.id: q for q in questions()}
    given = {str(k).replace("-", "_"): v for k, v in raw.items()}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise AdvisorError(f"{origin}: unknown answer(s) {', '.join(unknown)}; valid: {', '.join(known)}")
    probe = WizardState()
    for qid, value in given.items():
        error = probe.set_answer(qid, value)
        if error:
            raise AdvisorError(f"{origin}: {known[qid].flag}: {error}")
    return given


@dataclass
class WizardState:
    lang: str = "en"
    raw: dict[str, Any] = field(default_factory=dict)  # question id -> what the user typed or picked
    errors: dict[str, str] = field(default_factory=dict)  # question id -> one-line error
    run_dir: str = DEFAULT_RUN_DIR
    plan: "Plan | None" = None
    plan_for: tuple | None = None  # the answers the plan was made from (a changed answer re-plans)
    stage: str | None = None  # the stage shown on the memory step
    notes: list[str] = field(default_factory=list)  # what "make it fit" applied, in order
    batch_targets: dict[str, int] = field(default_factory=dict)  # stage -> the effective batch advise() recommended
    saved: Path | None = None
    # the file checked on the data step (issue 17): the stages that take its kind of data load it, mapped
    dataset: str | None = None
    dataset_answer: str = ""  # the `data` answer its type gives
    dataset_model: str | None = None  # whose tokenizer counted its tokens (None: the approximation)
    dataset_notes: list[str] = field(default_factory=list)  # stages it could not feed
    from_data: set[str] = field(default_factory=set)  # answers the data filled (a later file replaces them)

    # ---- answers ----------------------------------------------------------------------------------------
    def value(self, q: Question) -> Any:
        """The raw answer, else the declared default."""
        raw = self.raw.get(q.id)
        return q.default if _blank(raw) else raw

    def set_answer(self, qid: str, raw: Any, lookup: bool = True) -> str | None:
        """Keep what the user gave (even when invalid, so going back shows it); return the error, if any.
        `lookup=False` skips the GPU-table lookup (pre-filled answers were checked before the app started)."""
        q = next(q for q in questions() if q.id == qid)
        self.raw[qid] = raw
        try:
            q.parse(raw)
            if q.id == "gpu" and lookup and not _blank(raw):
                from estimators.errors import EstimateError
                from estimators.gpus import find_gpu

                try:
                    find_gpu(str(raw))
                except EstimateError as exc:
                    raise AdvisorError(str(exc)) from None
        except AdvisorError as exc:
            self.errors[qid] = str(exc).removeprefix(f"{q.flag}: ")
            return self.errors[qid]
        self.errors.pop(qid, None)
        return None

    def problems(self, step: str) -> list[str]:
        """What keeps the user on `step`: invalid answers and unanswered required questions."""
        out = []
        for q in questions_for(step):
            if q.id in self.errors:
                out.append(f"{q.text('label', self.lang)} {self.errors[q.id]}")
            elif q.required and _blank(self.raw.get(q.id)):
                out.append(q.text("label", self.lang))
        return out

    def clean_answers(self) -> dict[str, Any]:
        return {k: v for k, v in self.raw.items() if not _blank(v)}

    def answers(self):
        from ..questions import Answers

        return Answers.from_mapping(self.clean_answers(), origin="wizard")

    def answers_key(self) -> tuple:
        data = self.answers().to_data()
        return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in data.items()))

    def plan_is_current(self) -> bool:
        if self.plan is None:
            return False
        try:
            return self.plan_for == self.answers_key()
        except AdvisorError:
            return False

    def take_plan(self, plan: "Plan", key: tuple) -> None:
        self.plan, self.plan_for, self.notes = plan, key, []
        # make it fit returns to these (micro-batch x accumulation x GPUs), whatever the what-ifs did to them
        self.batch_targets = {s.name: s.setup.micro_batch * s.setup.grad_accum * s.setup.world_size for s in plan.stages}
        self.stage = largest_stage(plan)
        self.saved = None
        if self.dataset:  # cached check (the data step's): usually no second read
            from ..datasets.wire import attach

            self.dataset_notes = attach(plan, self.dataset, self.dataset_answer, self.dataset_model)


# ---- calls into the advisor (pure functions, safe in worker threads) ------------------------------------

def make_plan(raw: Mapping[str, Any], lang: str = "en") -> "Plan":
    from ..core import advise
    from ..questions import Answers

    return advise(Answers.from_mapping(dict(raw), origin="wizard"), lang=lang)


@cache
def _spec(text: str):
    from ..planning import model_spec

    return model_spec(text)[0]


def model_spec_of(plan: "Plan"):
    text = str(plan.answers.get("model") or plan.model.key) if plan.answers else plan.model.key
    try:
        return _spec(text)
    except Exception:  # the key is always resolvable when the typed text is not (e.g. a moved directory)
        return _spec(plan.model.key)


def capacity_bytes(plan: "Plan") -> float:
    from estimators.dtypes import GIB

    return plan.hardware.memory_gib * GIB


def stage_estimate(plan: "Plan", stage: str):
    from estimators import estimate

    return estimate(model_spec_of(plan), plan.stage(stage).setup)


def largest_stage(plan: "Plan") -> str:
    """The stage that needs the most memory: the one the memory step opens on."""
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

    from ..core import plan_margin

    est = stage_estimate(plan, stage)
    segments = dict(est.categories())
    segments["overhead"] = est.device_bytes - est.peak_allocated
    capacity = capacity_bytes(plan)
    margin = plan_margin(plan)
    kept = margin.kept(est, capacity)
    return MemoryView(stage, segments, est.device_bytes, capacity, est.peak_phase,
                      plan.hardware.gpu_name or plan.hardware.gpu, est.warnings, kept.total, kept,
                      paged_placement(est, capacity, margin, _pcie(plan)))


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
    from ..planning import default_hyper

    setup = setup.validated()
    before = plan.stage(stage).setup
    wide = {k: getattr(setup, k) for k in PLAN_WIDE if getattr(setup, k) != getattr(before, k)}  # only what changed
    stages = []
    for s in plan.stages:
        new = setup if s.name == stage else s.setup.with_(**wide).validated()
        hyper = s.hyper if new.method == s.setup.method else default_hyper(new.train, new.method)
        stages.append(s.model_copy(update={"setup": new, "hyper": hyper}))
    hardware = plan.hardware.model_copy(update={"count": setup.gpus, "nodes": setup.nodes})
    new_plan = plan.model_copy(update={"stages": stages, "adaptation": setup.method, "hardware": hardware})
    return new_plan.model_copy(update={"estimate": summarize(new_plan, keep_note=setup.method == plan.adaptation)})


def summarize(plan: "Plan", keep_note: bool = True):
    """The plan's EstimateSummary after a what-if change: the same fields advise() fills, read off the estimator
    for every stage (the largest stage is the peak). The §5 rule-of-thumb figure comes from core; its note
    described the advised set-up, so it is kept only while the adaptation is unchanged."""
    from ..core import estimate_summary, plan_margin, rule_of_thumb

    ests = {s.name: stage_estimate(plan, s.name) for s in plan.stages}
    old = plan.estimate
    rot = rule_of_thumb(plan.adaptation, plan.model.params_total)[1] if plan.model.params_total else None
    note = old.rule_of_thumb_note if old is not None and keep_note else ""
    return estimate_summary(ests, capacity_bytes(plan), round(rot, 2) if rot is not None else None, note,
                            plan_margin(plan), pcie_gbs=_pcie(plan))


def knob_setup(setup: "Setup", field_name: str, value: Any) -> "Setup":
    """`setup` with one what-if knob changed; keeps the combination valid (QLoRA computes in bf16/fp16)."""
    changes: dict[str, Any] = {field_name: value}
    if field_name == "method" and value == "qlora" and setup.precision == "fp32":
        changes["precision"] = "bf16"
    if field_name == "gpus" and value > 1 and setup.parallel == "none":
        changes["parallel"] = "ddp"
    if field_name == "gpus" and value == 1 and setup.nodes == 1:
        changes["parallel"] = "none"
    return setup.with_(**changes).validated()


def cheapest_fix(plan: "Plan", stage: str, effective_batch: int | None = None) -> "Fix | None":
    """The solver's first (cheapest) suggestion for `stage`, or None when it already fits or nothing helps. The
    fix keeps `effective_batch` (micro-batch x accumulation x GPUs; default: the stage's own) and the plan's margin."""
    from estimators.fit import fit_report

    from ..core import plan_margin

    report = fit_report(model_spec_of(plan), plan.stage(stage).setup, capacity_bytes(plan), plan_margin(plan), effective_batch)
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


# ---- rule lookups (for citing) ----------------------------------------------------------------------------

@cache
def rule_sources() -> dict[str, str]:
    """Rule id -> its source (a document section like §6, or a paper), over every rule table."""
    from .. import rules

    out: dict[str, str] = {}
    for row in [*rules.methods().values(), *rules.adaptations().values(), *rules.selection_rows(),
                *rules.rlhf_vs_dpo(), *rules.glossary().values()]:
        out[row["id"]] = row.get("source", "")
    try:
        from ..planning import hyper_defaults

        for row in hyper_defaults().values():
            out[row["id"]] = row.get("source", "")
    except Exception:  # the hyper-parameter table is optional for citing
        pass
    return out


def short_source(source: str) -> str:
    """'§6' stays; 'paper: Dettmers et al., QLoRA: ..., 2023, arXiv:...' becomes 'Dettmers et al. 2023'."""
    if not source.startswith("paper:"):
        return source
    parts = [p.strip() for p in source.removeprefix("paper:").split(",")]
    year = next((p for p in parts if p.isdigit() and len(p) == 4), "")
    author = parts[0] if "et al" in parts[0] else f"{parts[0]} et al."
    return f"{author} {year}".strip()


def cite(rule: str) -> str:
    """'sel.domain §6', 'hp.sft.lora Dettmers et al. 2023'; 'estimate' (the memory model) stays as it is."""
    return f"{rule} {short_source(rule_sources().get(rule, ''))}".strip()
