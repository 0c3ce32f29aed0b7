"""What `advisor advise` priced, as a Plan stores it (advisor/plan.py): each stage's memory on the plan's card, the
plan's estimate summary with its notes in both languages, and the time and cost of every stage. The printer, the
wizard and the run README read these figures instead of pricing the stages again."""

from __future__ import annotations

from dataclasses import dataclass

from .plan_part import PlanPart


@dataclass(kw_only=True)
class StageMemory(PlanPart):
    """One stage's memory as `advisor advise` priced it on the plan's card (estimators/result.py Estimate), so the
    printer, the wizard and the run README read the figures instead of pricing the stage again."""

    peak_allocated_gib: float  # GiB the step allocates through PyTorch at its peak
    peak_reserved_gib: float  # GiB the caching allocator reserves then
    device_gib: float  # GiB on the card (nvidia-smi): reserved plus the CUDA context
    peak_phase: str
    fits: bool  # with the plan's margin kept free (EstimateSummary.margin_note)


def in_lang(en: str, ko: str | None, lang: str) -> str:
    """What a reader of `lang` sees of a text kept in both languages: English where there is no Korean."""
    return ko if lang == "ko" and ko else en


@dataclass(kw_only=True, frozen=True)
class Note(PlanPart):
    """A warning in both languages (rules/messages.toml); the renderer picks one with `text`."""

    en: str
    ko: str = ""

    def text(self, lang: str) -> str:
        return in_lang(self.en, self.ko, lang)


@dataclass(kw_only=True)
class EstimateSummary(PlanPart):
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
class StageTime(PlanPart):
    """One stage's predicted wall time and cost on the plan's GPUs (estimators/time_plan.plan_time)."""

    name: str
    gpus: int = 1
    tokens_per_s_per_gpu: float
    hours: float  # h, wall clock; hours_low..hours_high is the time model's band
    hours_low: float
    hours_high: float
    usd: float | None = None  # None: the card has no price


@dataclass(kw_only=True)
class TimeSummary(PlanPart):
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
