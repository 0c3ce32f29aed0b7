"""What the wizard remembers: its steps, the user's raw answers and the current Plan. No Textual here.

The wizard is a view: answers go through `advisor.questions` (the declarations the CLI flags use); the calls it
makes into the advisor for a plan, its memory and what-ifs, and its files are in advisor/tui/plan_calls.py.
Heavy modules (pydantic through advisor.plan, the generator) are imported inside the functions that need them,
so the first screen paints before they load.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import AdvisorError
from ..question_types import Question
from ..questions import question, questions

if TYPE_CHECKING:
    from ..plan import Plan

STEPS = ("goal", "data", "resources", "recommend", "memory", "script", "finish")
QUESTION_STEPS = ("goal", "data", "resources")
# Which step asks which question (by id). A question declared later and not listed here is asked on the
# resources step, so a new declaration shows up in the wizard without touching it. The model is asked with the
# goal, before the data: the data step counts the file's tokens with that model's tokenizer (issue 17).
STEP_QUESTIONS = {
    "goal": ("goal", "model"),
    "data": ("data", "data_count", "reward"),
    "resources": ("gpu", "gpu_count", "time_budget_hours", "budget_usd", "price", "priority", "seq_len"),
}
# The what-if controls on the memory step: Setup knobs from advisor.knobs.KNOBS, in this order.
WHATIF_KNOBS = ("micro_batch", "seq_len", "lora_r", "grad_ckpt", "optimizer", "adaptation", "quant_type", "gpus", "parallel")
# Knobs that belong to the whole plan (one adaptation per plan, one layout per machine): changing them on one
# stage changes every stage.
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
    from ..answers import given_answers

    known = {q.id: q for q in questions()}
    given = given_answers(raw, origin)
    probe = WizardState()
    for qid, value in given.items():
        error = probe.set_answer(qid, value)
        if error:
            raise AdvisorError(f"{origin}: {known[qid].flag}: {error}")
    return given


class WizardState:
    """The answers, their errors and what was made from them. A plain class where a dataclass would do: building a
    dataclass of these 17 fields (its generated __init__, __repr__ and __eq__) costs the wizard's start-up about
    1.4 ms, before the first frame (issue 14 §8); nothing compares or prints states."""

    def __init__(self, lang: str = "en", raw: dict[str, Any] | None = None, run_dir: str = DEFAULT_RUN_DIR) -> None:
        self.lang = lang
        self.raw: dict[str, Any] = {} if raw is None else raw  # question id -> what the user typed or picked
        self.errors: dict[str, str] = {}  # question id -> one-line error
        self.run_dir = run_dir
        self.plan: Plan | None = None
        self.plan_for: tuple | None = None  # the answers the plan was made from (a changed answer re-plans)
        self.stage: str | None = None  # the stage shown on the memory step
        self.notes: list[str] = []  # what "make it fit" applied, in order
        self.batch_targets: dict[str, int] = {}  # stage -> the effective batch advise() recommended
        self.saved: Path | None = None
        # the file checked on the data step (issue 17): the stages that take its kind of data load it, mapped
        self.dataset: str | None = None
        self.dataset_answer = ""  # the `data` answer its type gives
        self.dataset_model: str | None = None  # the model answer whose tokenizer counted its tokens (else the approximation)
        self.dataset_check: dict | None = None  # that check, shown again when the user comes back to the data step
        self.dataset_notes: list[str] = []  # stages it could not feed
        self.from_data: set[str] = set()  # answers the data filled (a later file replaces them)

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

    def model(self) -> str:
        """The model the plan is for (the answer, else the declared default): its tokenizer counts the data's tokens."""
        return str(self.value(question("model")) or "").strip()

    def dataset_is_stale(self) -> bool:
        """A file was read with another model's tokenizer than the one now chosen (the user went back and changed it)."""
        return self.dataset is not None and (self.dataset_model or "") != self.model()

    def clean_answers(self) -> dict[str, Any]:
        return {k: v for k, v in self.raw.items() if not _blank(v)}

    def answers(self):
        from ..answers import Answers

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

    def planned(self) -> "Plan":
        """The plan, on the steps after recommend: they open only once one is made (recommend's Next waits for it)."""
        assert self.plan is not None, "a step after recommend opened before the plan was made"
        return self.plan

    def shown_stage(self) -> str:
        """The stage the memory step shows: take_plan sets it with the plan."""
        assert self.stage is not None, "the memory step opened before the plan was made"
        return self.stage

    def take_plan(self, plan: "Plan", key: tuple) -> None:
        from .plan_calls import largest_stage  # here: the first screen needs none of plan_calls

        self.plan, self.plan_for, self.notes = plan, key, []
        # make it fit returns to these (micro-batch x accumulation x GPUs), whatever the what-ifs did to them
        self.batch_targets = {s.name: s.setup.micro_batch * s.setup.grad_accum * s.setup.world_size for s in plan.stages}
        self.stage = largest_stage(plan)
        self.saved = None
        if self.dataset:  # cached check (the data step's): usually no second read
            from ..datasets.wire import attach

            # counted with the plan's model whatever the data step last used (it re-measures when the model changed)
            self.dataset_notes = attach(plan, self.dataset, self.dataset_answer, self.model())


# ---- rule lookups (for citing) ----------------------------------------------------------------------------


@cache
def rule_sources() -> dict[str, str]:
    """Rule id -> its source (a document section like §6, or a paper), over every rule table."""
    from .. import rules

    out: dict[str, str] = {}
    for row in [*rules.methods().values(), *rules.adaptations().values(), *rules.selection_rows(), *rules.rlhf_vs_dpo(), *rules.glossary().values()]:
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
