"""Time and cost: a candidate's predicted hours and dollars on the user's GPUs for the user's data size
(estimators/time_plan.py), the plan's TimeSummary, and the one-line words the wizard shows for it."""

from __future__ import annotations

from dataclasses import dataclass

from estimators.errors import EstimateError
from estimators.gpus import find_gpu
from estimators.model import ModelSpec
from estimators.time_plan import Stage as TimeStage
from estimators.time_plan import plan_line, plan_time
from estimators.time_report import Dataset

from ..errors import AdvisorError
from ..plan import Plan, StageTime, TimeSummary
from ..planning import default_hyper
from ..questions import Answers
from .context import Context
from .fitting import Candidate

SFT_SCALE = 10_000  # §2: "이런 쌍을 수만~수십만 개 학습" (tens of thousands to hundreds of thousands)


@dataclass(frozen=True)
class RunTime:
    """A candidate's predicted wall time and cost on the user's GPUs: estimators/time_plan.plan_time's result."""

    plan: dict
    line: str  # plan_line: "3 stages, ~41.0 h, ~$330 on 1x NVIDIA A100 80GB"

    @property
    def hours(self) -> float:
        return self.plan["total"]["hours"]

    @property
    def usd(self) -> float | None:
        return self.plan["total"]["usd"]

    @property
    def short(self) -> str:
        """"~9.0 h, ~$72": the second side of a comparison."""
        return f"~{self.hours:.1f} h" + (f", ~${self.usd:,.0f}" if self.usd is not None else "")


def data_size(answers: Answers) -> tuple[int, str, str]:
    """(examples the time is priced for, en, ko): the user's data-size answer, else §2's lower end (SFT_SCALE),
    said as an assumption. Each example is priced at the full sequence length: an upper bound when examples are
    shorter (unpacked runs pad nothing beyond the example itself, estimators/time_report.Dataset)."""
    seq = answers.seq_len
    if answers.data_count:
        n = answers.data_count
        return n, (f"for {n:,} examples of up to {seq:,} tokens each, per stage"), (f"단계마다 예제 {n:,}개, 예제당 최대 {seq:,} 토큰 기준")
    n = SFT_SCALE
    return n, (f"assuming {n:,} examples (the low end of §2's scale; give --data-count) of {seq:,} tokens each, per stage"), \
        (f"예제 {n:,}개 가정 (§2 규모의 하한; --data-count로 지정), 예제당 {seq:,} 토큰, 단계마다")


def candidate_time(ctx: Context, cand: Candidate) -> RunTime | None:
    """Every stage of `cand` priced in hours and dollars on ctx's GPUs for the user's data size; None when the card
    has no speed figures (a size like "24GB") or a stage cannot be timed."""
    gpu = ctx.hw.gpu
    if not gpu.timed:
        return None
    n, _, _ = data_size(ctx.answers)
    stages = [TimeStage(s.name, ctx.spec, s.setup,
                        Dataset(examples=n, mean_tokens=float(ctx.answers.seq_len), epochs=default_hyper(s.train, cand.adaptation).epochs))
              for s in cand.stages]
    try:
        plan = plan_time(stages, gpu)
    except EstimateError:
        return None
    if any(st.get("hours") is None for st in plan["stages"]):
        return None
    return RunTime(plan, plan_line(plan, gpu))


def time_summary(ctx: Context, cand: Candidate, lang: str = "en") -> TimeSummary | None:
    """The plan's `time` block: each stage's hours and dollars, the total, the price and the data assumption."""
    rt = candidate_time(ctx, cand)
    if rt is None:
        return None
    n, en, ko = data_size(ctx.answers)
    p = rt.plan
    return TimeSummary(
        stages=[StageTime(name=s["name"], gpus=s["gpus"], tokens_per_s_per_gpu=s["tokens_per_s_per_gpu"], hours=s["hours"],
                          hours_low=s["hours_low"], hours_high=s["hours_high"], usd=s["usd"]) for s in p["stages"]],
        hours=p["total"]["hours"], hours_low=p["total"]["hours_low"], hours_high=p["total"]["hours_high"], usd=p["total"]["usd"],
        price_usd_per_gpu_hour=p["price_usd_per_gpu_hour"], price_source=p["price_source"] or "",
        examples=n, examples_assumed=not ctx.answers.data_count, mean_tokens=ctx.answers.seq_len,
        gpu_name=ctx.hw.gpu.name, line=rt.line, assumption=en if lang == "en" else ko,
    )


def time_words(t: TimeSummary, lang: str = "en") -> str:
    """The plan's time in one line for the wizard: "3 stages, ~41.0 h (27.5-53.2 h), ~$330 on 1x NVIDIA A100 80GB"."""
    n, gpus = len(t.stages), max((s.gpus for s in t.stages), default=1)
    gpu = t.gpu_name
    cost = f", ~${t.usd:,.0f}" if t.usd is not None else ""
    if lang == "ko":
        return f"{n}단계, 약 {t.hours:.1f}시간 ({t.hours_low:.1f}-{t.hours_high:.1f}시간){cost}, {gpus}× {gpu}"
    return f"{n} stage{'s' if n != 1 else ''}, ~{t.hours:.1f} h ({t.hours_low:.1f}-{t.hours_high:.1f} h){cost} on {gpus}x {gpu}"


def stage_time_words(plan: Plan, spec: ModelSpec, stage_name: str, lang: str = "en") -> str:
    """One stage as it is set up now (the wizard's what-ifs change it) priced for the plan's data size: tokens/s per
    GPU, hours with the band, dollars. "" when the card has no speed figures or the set-up cannot be timed."""
    from estimators.time_report import time_dict

    try:
        gpu = find_gpu(plan.hardware.gpu)
        stage = plan.stage(stage_name)
        if not gpu.timed:
            return ""
        n = plan.time.examples if plan.time is not None else SFT_SCALE
        mean = plan.time.mean_tokens if plan.time is not None else stage.setup.seq_len
        epochs = stage.hyper.epochs if stage.hyper else default_hyper(stage.setup.train, stage.setup.method).epochs
        block = time_dict(spec, stage.setup, gpu, Dataset(examples=n, mean_tokens=float(mean), epochs=epochs))
    except (EstimateError, AdvisorError):
        return ""
    h = block.get("hours") or {}
    if h.get("total") is None:
        return ""
    usd = (block.get("cost") or {}).get("usd")
    cost = f", ~${usd:,.2f}" if usd is not None else ""
    tps = block["tokens_per_s_per_gpu"]
    if lang == "ko":
        return (f"{stage_name}: 약 {h['total']:.1f}시간 ({h['low']:.1f}-{h['high']:.1f}시간){cost}, GPU당 {tps:,.0f} 토큰/s "
                f"(예제 {n:,}개 기준)")
    return f"{stage_name}: ~{h['total']:.1f} h ({h['low']:.1f}-{h['high']:.1f} h){cost} at {tps:,.0f} tokens/s per GPU (for {n:,} examples)"


def budget_words(ctx: Context) -> tuple[str, str]:
    a = ctx.answers
    en = [f"{a.time_budget_hours:g} h" for _ in [0] if a.time_budget_hours is not None]
    ko = [f"{a.time_budget_hours:g}시간" for _ in [0] if a.time_budget_hours is not None]
    if a.budget_usd is not None:
        en.append(f"${a.budget_usd:,.0f}")
        ko.append(f"${a.budget_usd:,.0f}")
    return " and ".join(en), ", ".join(ko)
