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

from ..answers import Answers
from ..errors import AdvisorError
from ..messages import Pair, both, text
from ..plan import Plan
from ..plan_priced import StageTime, TimeSummary
from ..planning import default_hyper
from .context import Context
from .fitting import Candidate, stage_reward

SFT_SCALE = 10_000  # §2: "이런 쌍을 수만~수십만 개 학습" (tens of thousands to hundreds of thousands)
USER_PRICE = "user"  # TimeSummary.price_source when the price is the user's answer (--price), not the GPU table's


@dataclass(frozen=True)
class RunTime:
    """A candidate's predicted wall time and cost on the user's GPUs: estimators/time_plan.plan_time's result."""

    plan: dict
    line: str  # plan_line: "3 stages, ~41.0 h, ~$330 on 1x NVIDIA A100 80GB" (English: what TimeSummary.line keeps)
    gpu: str  # the card's name

    @property
    def hours(self) -> float:
        return self.plan["total"]["hours"]

    @property
    def usd(self) -> float | None:
        return self.plan["total"]["usd"]

    @property
    def words(self) -> Pair:
        """`line` in both languages: "3 stages, ~41.0 h, ~$330 on 1x NVIDIA A100 80GB" / "3단계, 약 41.0시간, ~$330, 1× …"."""
        gpus = max(((s.get("gpus") or 1) for s in self.plan["stages"]), default=1)
        return both("time.run", stages=stage_count(len(self.plan["stages"])), hours=self.hours, cost=self._cost, gpus=gpus, gpu=self.gpu)

    @property
    def short(self) -> Pair:
        """ "~9.0 h, ~$72" / "약 9.0시간, ~$72": the second side of a comparison."""
        return both("time.short", hours=self.hours, cost=self._cost)

    @property
    def _cost(self) -> str:
        return f", ~${self.usd:,.0f}" if self.usd is not None else ""


def data_size(answers: Answers) -> tuple[int, Pair]:
    """(examples the time is priced for, the words for it): the user's data-size answer, else §2's lower end
    (SFT_SCALE), said as an assumption. Each example is priced at the full sequence length: an upper bound when
    examples are shorter (unpacked runs pad nothing beyond the example itself, estimators/time_report.Dataset)."""
    seq = answers.seq_len
    if answers.data_count:
        return answers.data_count, both("part.data_given", n=answers.data_count, seq=seq)
    return SFT_SCALE, both("part.data_assumed", n=SFT_SCALE, seq=seq)


def candidate_time(ctx: Context, cand: Candidate) -> RunTime | None:
    """Every stage of `cand` priced in hours and dollars on ctx's GPUs for the user's data size, at the user's price
    per GPU-hour when given (else the GPU table's); None when the card has no speed figures (a size like "24GB") or a
    stage cannot be timed."""
    gpu = ctx.hw.gpu
    if not gpu.timed:
        return None
    n, _ = data_size(ctx.answers)
    stages = [
        TimeStage(
            s.name,
            ctx.spec,
            s.setup,
            Dataset(examples=n, mean_tokens=float(ctx.answers.seq_len), epochs=default_hyper(s.train, cand.adaptation).epochs),
            stage_reward(s.train, cand.reward_model),
        )
        for s in cand.stages
    ]
    try:
        plan = plan_time(stages, gpu, ctx.answers.price)
    except EstimateError:
        return None
    if any(st.get("hours") is None for st in plan["stages"]):
        return None
    return RunTime(plan, plan_line(plan, gpu), gpu.name)


def time_summary(ctx: Context, cand: Candidate) -> TimeSummary | None:
    """The plan's `time` block: each stage's hours and dollars, the total, the price and the data assumption."""
    rt = candidate_time(ctx, cand)
    if rt is None:
        return None
    n, (en, ko) = data_size(ctx.answers)
    p = rt.plan
    return TimeSummary(
        stages=[
            StageTime(
                name=s["name"],
                gpus=s["gpus"],
                tokens_per_s_per_gpu=s["tokens_per_s_per_gpu"],
                hours=s["hours"],
                hours_low=s["hours_low"],
                hours_high=s["hours_high"],
                usd=s["usd"],
            )
            for s in p["stages"]
        ],
        hours=p["total"]["hours"],
        hours_low=p["total"]["hours_low"],
        hours_high=p["total"]["hours_high"],
        usd=p["total"]["usd"],
        price_usd_per_gpu_hour=p["price_usd_per_gpu_hour"],
        price_source=USER_PRICE if ctx.answers.price is not None else p["price_source"] or "",
        examples=n,
        examples_assumed=not ctx.answers.data_count,
        mean_tokens=ctx.answers.seq_len,
        gpu_name=ctx.hw.gpu.name,
        line=rt.line,
        assumption=en,
        assumption_ko=ko,
    )


def stage_count(n: int) -> Pair:
    """ "1 stage" / "3 stages" in both languages."""
    return both("time.one_stage") if n == 1 else both("time.stages", n=n)


def time_words(t: TimeSummary, lang: str = "en") -> str:
    """The plan's time in one line for the wizard: "3 stages, ~41.0 h (27.5-53.2 h), ~$330 on 1x NVIDIA A100 80GB"."""
    return text(
        "time.plan",
        lang,
        stages=stage_count(len(t.stages)),
        hours=t.hours,
        low=t.hours_low,
        high=t.hours_high,
        cost=f", ~${t.usd:,.0f}" if t.usd is not None else "",
        gpus=max((s.gpus for s in t.stages), default=1),
        gpu=t.gpu_name,
    )


def stage_time_words(plan: Plan, spec: ModelSpec, stage_name: str, lang: str = "en") -> str:
    """One stage as it is set up now (the wizard's what-ifs change it) priced for the plan's data size: tokens/s per
    GPU, hours with the band, dollars at the plan's price (the user's answer, else the GPU table's). "" when the card
    has no speed figures or the set-up cannot be timed."""
    from estimators.time_report import time_dict

    from ..planning import stage_models

    try:
        gpu = find_gpu(plan.hardware.gpu)
        stage = plan.stage(stage_name)
        reward = stage_models(plan, stage)[1]
        if not gpu.timed:
            return ""
        n = plan.time.examples if plan.time is not None else SFT_SCALE
        mean = plan.time.mean_tokens if plan.time is not None else stage.setup.seq_len
        epochs = stage.hyper.epochs if stage.hyper else default_hyper(stage.setup.train, stage.setup.adaptation).epochs
        block = time_dict(spec, stage.setup, gpu, Dataset(examples=n, mean_tokens=float(mean), epochs=epochs), plan_price(plan), reward_model=reward)
    except (EstimateError, AdvisorError):
        return ""
    h = block.get("hours") or {}
    if h.get("total") is None:
        return ""
    usd = (block.get("cost") or {}).get("usd")
    return text(
        "time.stage",
        lang,
        stage=stage_name,
        hours=h["total"],
        low=h["low"],
        high=h["high"],
        cost=f", ~${usd:,.2f}" if usd is not None else "",
        tps=block["tokens_per_s_per_gpu"],
        n=n,
    )


def plan_price(plan: Plan) -> float | None:
    """The user's price per GPU-hour the plan was advised with (its answers), or None: the GPU table's."""
    price = (plan.answers or {}).get("price")
    return float(price) if price is not None else None


def budget_words(ctx: Context) -> Pair:
    """The user's time and money budget in words ("" when none was given)."""
    a = ctx.answers
    hours = both("part.hours", hours=a.time_budget_hours) if a.time_budget_hours is not None else None
    money = f"${a.budget_usd:,.0f}" if a.budget_usd is not None else None
    if hours and money:
        return both("part.time_and_money", time=hours, money=money)
    return hours or ((money, money) if money else ("", ""))
