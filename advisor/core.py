"""`advise(answers) -> Plan`: the source document's tables applied to the user's answers, then sized to the GPU.

Pure and torch-free. Two steps:

1. *What* to train (§6): the situation rows picked from goal, data, priority and resources give the method
   (SFT, RLHF as SFT -> reward model -> PPO per §3, DPO, or GRPO as a marked addition) and, where a row names
   one, the adaptation (QLoRA on a personal GPU, LoRA/QLoRA for a domain).
2. *How*, so that it fits: each adaptation is tried in the preferred order (quality: full > LoRA > QLoRA, the
   domain row's LoRA/QLoRA first; cost: the row's, then LoRA > QLoRA > full) with memory-saving knobs, every
   stage priced by the memory model with its own training kind and judged with a margin kept free
   (estimators/margin.py). The first that fits everywhere wins; only when none fits at the asked sequence
   length is the sequence shortened; when nothing fits the plan says so and what would fit.

Every reason carries the rule id it follows (rules/*.toml) or "estimate" for memory-model reasoning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache

from estimators.checks import PROMPT_ROOM
from estimators.dtypes import GIB
from estimators.errors import EstimateError
from estimators.pricing import estimate
from estimators.result import Estimate
from estimators.fit import SEQ_STEP, max_micro_batch, max_seq_len
from estimators.gpus import Gpu, find_gpu, gpus
from estimators.margin import Margin, paged_placement, parse_margin
from estimators.model import ModelSpec
from estimators.setup import Setup
from estimators.time_plan import Stage as TimeStage, plan_line, plan_time
from estimators.time_report import Dataset

from . import rules
from .errors import AdvisorError
from .plan import Alternative, EstimateSummary, Plan, Reason, StageTime, TimeSummary
from .planning import PIPELINES, build_plan, hyper_rule, model_spec
from .questions import Answers

EFFECTIVE_BATCH = 16  # sequences per optimizer step the batch sizing aims at (micro-batch x accumulation x GPUs)
MIN_SEQ = 256  # the shortest sequence the advisor cuts to when nothing fits at the asked length
# "Resources ample" (§6) is judged by the memory model, and a stated time or money budget by the time model
# (estimators/time_plan.py: RLHF's predicted hours and dollars on the user's GPUs against the budget). Only when
# the card has no speed figures (a size like "24GB") or no price do these fallbacks apply, the advisor's own
# judgement (the document gives none): three RLHF stages rarely finish in less than a day.
AMPLE_HOURS = 24.0
AMPLE_USD = 1000.0
FEW_EXAMPLES = 1000  # below this any fine-tuning run is likely to overfit (advisor's judgement)
SFT_SCALE = 10_000  # §2: "이런 쌍을 수만~수십만 개 학습" (tens of thousands to hundreds of thousands)
RULE_OF_THUMB_GAP = 0.25  # explain the §5 figure when our estimate differs from it by more than this
DOC_PARAMS = 7e9  # §5's table is "7B 모델 기준"
ROLLOUT_KINDS = ("grpo", "ppo")  # kinds whose memory grows with gradient accumulation (estimators/kinds.py)

QUALITY_ORDER = ("full", "lora", "qlora")  # §5: full = best performance; LoRA slight loss; QLoRA 4-bit
COST_ORDER = ("lora", "qlora", "full")
PREFERENCE_GOALS = ("quality_safety", "best_quality", "simple", "reasoning")
ADAPTATION_NAME = {"full": "full fine-tuning", "lora": "LoRA", "qlora": "QLoRA"}
ADAPTATION_NAME_KO = {"full": "Full fine-tuning", "lora": "LoRA", "qlora": "QLoRA"}
METHOD_NAME = {"sft": "SFT", "rlhf": "RLHF", "dpo": "DPO", "sft+dpo": "SFT → DPO", "grpo": "GRPO"}


# ------------------------------------------------------------------------------------------------ small helpers
def _r(rule: str, en: str, ko: str) -> Reason:
    return Reason(rule=rule, en=en, ko=ko)


def _alt(method: str, rule: str, en: str, ko: str) -> Alternative:
    return Alternative(method=method, why_not_en=en, why_not_ko=ko, rule=rule)


def _gib(nbytes: float) -> float:
    return round(nbytes / GIB, 2)


def estimate_summary(stages: dict[str, Estimate], capacity: float, rule_of_thumb_gib: float | None, note: str,
                     margin: Margin | None = None, lang: str = "en", pcie_gbs: float | None = None) -> EstimateSummary:
    """A plan's EstimateSummary from each stage's estimate: the stage needing the most memory is the peak, and
    the plan fits when every stage does with the margin kept (estimators/margin.py: the estimate's measured error
    and, on a consumer card, the display). Headroom is what is left after the margin. Paged optimizer states
    (unified memory, outside the on-card figure) are reported with where they live. advise() and the wizard's
    what-ifs both call this."""
    margin = margin or Margin()
    name = max(stages, key=lambda n: stages[n].device_bytes)
    peak = stages[name]
    tightest = min(stages, key=lambda n: margin.spare(stages[n], capacity))
    kept = margin.kept(stages[tightest], capacity)
    paged_name = max(stages, key=lambda n: stages[n].paged_bytes)
    paged = paged_placement(stages[paged_name], capacity, margin, pcie_gbs)
    notes = paged_notes(stages, capacity, margin, pcie_gbs)
    return EstimateSummary(
        peak_allocated_gib=_gib(peak.peak_allocated),
        peak_reserved_gib=_gib(peak.peak_reserved),
        device_gib=_gib(peak.device_bytes),
        peak_phase=f"{name}: {peak.peak_phase}",
        fits=all(margin.fits(e, capacity) for e in stages.values()),
        headroom_gib=_gib(margin.spare(stages[tightest], capacity)),
        rule_of_thumb_gib=rule_of_thumb_gib,
        rule_of_thumb_note=note,
        margin_gib=_gib(kept.total),
        margin_note=margin.verdict(stages[tightest], capacity, lang),
        paged_gib=_gib(paged.total) if paged else 0.0,
        paged_spilled_gib=_gib(paged.spilled) if paged else 0.0,
        paged_note=(notes[0] if lang == "en" else notes[1]) if notes else "",
        margin_text=margin.text,
    )


def plan_margin(plan: Plan, gpu: Gpu | None = None) -> Margin:
    """The margin a plan was judged with (EstimateSummary.margin_text), for re-judging it after a what-if."""
    text = plan.estimate.margin_text if plan.estimate is not None else "auto"
    if gpu is None:
        try:
            gpu = find_gpu(plan.hardware.gpu)
        except EstimateError:
            gpu = None
    consumer = bool(gpu.consumer) if gpu is not None else False
    return parse_margin(None if text == "auto" else text, display=consumer)


def paged_notes(stages: dict[str, Estimate], capacity: float, margin: Margin, pcie_gbs: float | None) -> tuple[str, str] | None:
    """(en, ko): where the largest stage's paged optimizer states live on this card and what paging costs."""
    name = max(stages, key=lambda n: stages[n].paged_bytes)
    paged = paged_placement(stages[name], capacity, margin, pcie_gbs)
    if paged is None:
        return None
    prefix = f"{name}: " if len(stages) > 1 else ""
    return prefix + paged.describe("en"), prefix + paged.describe("ko")


@cache
def _rows() -> dict[str, dict]:
    return {row["id"]: row for row in rules.selection_rows()}


@cache
def _cmp() -> dict[str, dict]:
    return {row["id"]: row for row in rules.rlhf_vs_dpo()}


@cache
def _methods() -> dict[str, dict]:
    return rules.methods()


@cache
def _adaptations() -> dict[str, dict]:
    return rules.adaptations()


def _row_reason(rid: str, extra_en: str = "", extra_ko: str = "") -> Reason:
    """'§6 “situation” → recommendation', in both languages, citing the row."""
    row = _rows()[rid]
    en = f"§6 “{rules.text(row, 'situation', 'en')}” → {rules.text(row, 'recommend', 'en')}"
    ko = f"§6 “{rules.text(row, 'situation', 'ko')}” → {rules.text(row, 'recommend', 'ko')}"
    return _r(rid, en + (f"; {extra_en}" if extra_en else ""), ko + (f"; {extra_ko}" if extra_ko else ""))


def _cmp_text(rid: str, side: str, lang: str) -> str:
    row = _cmp()[rid]
    return f"{rules.text(row, 'label', lang)}: {rules.text(row, side, lang)}"


def comparison_close(plan: Plan) -> bool:
    """True when RLHF vs DPO was a close call (the plan cites the comparison's deciding row)."""
    return any(r.rule == "cmp.choose_when" for r in plan.reasons)


# ------------------------------------------------------------------------------------------------ hardware
@dataclass(frozen=True)
class Hw:
    gpu: Gpu
    count: int
    margin: Margin | None = None  # None: automatic (the estimate's measured error; the display on a consumer card)

    @property
    def capacity(self) -> float:
        return self.gpu.memory_bytes

    @property
    def keep(self) -> Margin:
        """What a plan keeps free on each card (estimators/margin.py)."""
        return self.margin if self.margin is not None else Margin(display=self.gpu.consumer)

    def fits(self, est: Estimate) -> bool:
        return self.keep.fits(est, self.capacity)

    @property
    def personal(self) -> bool:
        """One consumer card (GeForce RTX, rules/gpus.toml `consumer`) or one card of at most 24 GiB given by
        size: §6's 'personal GPU'."""
        if self.count != 1:
            return False
        return self.gpu.consumer or (self.gpu.id not in gpus() and self.gpu.memory_gib <= 24)

    @property
    def label(self) -> str:
        return f"{self.count}× {self.gpu.name} ({self.gpu.memory_gib:g} GiB)"

    def precision(self, adaptation: str) -> str:
        if self.gpu.bf16:
            return "bf16"
        # No bf16 (T4, V100): adapters train in fp32 over an fp16 base; full fine-tuning needs fp32 master weights
        # under fp16 autocast (pure fp16 weights with AdamW do not train).
        return "fp16-mixed" if adaptation == "full" else "fp16"


# ------------------------------------------------------------------------------------------------ fitting
@dataclass(frozen=True)
class StageFit:
    name: str
    train: str
    setup: Setup
    estimate: Estimate  # of `setup` as planned (micro-batch sized)
    fits: bool
    max_micro_batch: int = 0
    base_bytes: int = 0  # on the card at micro-batch 1: what adaptations are compared by


@dataclass(frozen=True)
class Candidate:
    method: str
    adaptation: str
    seq_len: int
    stages: tuple[StageFit, ...]

    @property
    def fits(self) -> bool:
        return all(s.fits for s in self.stages)

    @property
    def peak(self) -> StageFit:
        return max(self.stages, key=lambda s: s.estimate.device_bytes)

    @property
    def device_bytes(self) -> int:
        return self.peak.estimate.device_bytes

    @property
    def base_bytes(self) -> int:
        """The largest stage at micro-batch 1: the memory an adaptation needs at least."""
        return max(s.base_bytes for s in self.stages)


def base_setup(train: str, adaptation: str, hw: Hw, seq_len: int) -> Setup:
    world = hw.count
    parallel = "none" if world == 1 else ("fsdp" if adaptation == "full" else "ddp")
    # Probed with the accumulation the plan will use at micro-batch 1 (gradients live across micro-steps, and
    # the estimator prices that), except GRPO and PPO, whose rollouts grow with accumulation (GRPO's round, PPO's
    # stored rollout logits): _micro_batch raises it there as far as it fits.
    accum = 1 if train in ROLLOUT_KINDS else _accum(1, world)
    setup = Setup(train=train, method=adaptation, precision=hw.precision(adaptation), seq_len=seq_len, gpus=world,
                  parallel=parallel, grad_accum=accum)
    if train in ("ppo", "grpo") and setup.response_len + PROMPT_ROOM > seq_len:
        # PPO/GRPO sequences are prompt + response: a short sequence gets half of it as the response
        setup = setup.with_(response_len=max(1, seq_len // 2))
    return setup


def knob_variants(base: Setup) -> list[Setup]:
    """The knob sets tried for one stage, cheapest in speed and quality first; the last saves the most memory.
    (Offloading and more GPUs are left to `advisor fit`: they change the launcher or the hardware.)"""
    if base.method == "full":
        out = [
            base.with_(grad_ckpt=False),
            base.with_(grad_ckpt=False, optimizer="adamw8bit"),
            base.with_(grad_ckpt=True),
            base.with_(grad_ckpt=True, optimizer="adamw8bit"),
            base.with_(grad_ckpt=True, optimizer="paged_adamw8bit"),
        ]
    else:
        out = [base.with_(grad_ckpt=True), base.with_(grad_ckpt=True, optimizer="adamw8bit"), base.with_(grad_ckpt=True, optimizer="paged_adamw8bit")]
        if base.world_size > 1:  # shard the base weights too when replicas do not fit
            out += [s.with_(parallel="fsdp") for s in out]
    return out


def _micro_batch(spec: ModelSpec, setup: Setup, hw: Hw) -> tuple[Setup, int]:
    """The setup with micro-batch (a power of two that fits with the margin kept) and gradient accumulation
    toward EFFECTIVE_BATCH; also the largest micro-batch that fits at all. Powers of two divide GRPO's
    num_generations (8) or are multiples of it, so a round never grows to lcm(G, batch)."""
    biggest = max(1, max_micro_batch(spec, setup, hw.capacity, hw.keep))
    target = max(1, EFFECTIVE_BATCH // setup.world_size)
    mb = 1 << int(math.log2(min(biggest, target)))
    sized = setup.with_(micro_batch=mb, grad_accum=_accum(mb, setup.world_size))
    # GRPO generates a whole round (micro-batch x accumulation completions) at once and PPO keeps the fp32 logits of
    # micro-batch x accumulation rollouts, so a larger accumulation costs memory there: halve it until it fits
    # again (halving keeps GRPO's round a multiple of G or a divisor of it).
    while setup.train in ROLLOUT_KINDS and sized.grad_accum > 1 and not hw.fits(estimate(spec, sized)):
        sized = sized.with_(grad_accum=sized.grad_accum // 2)
    return (sized if hw.fits(estimate(spec, sized)) else setup), biggest


def _accum(micro_batch: int, world: int) -> int:
    return max(1, math.ceil(EFFECTIVE_BATCH / (micro_batch * world)))


def fit_candidate(spec: ModelSpec, method: str, adaptation: str, hw: Hw, seq_len: int) -> Candidate:
    """Each stage of `method` with the first knob set that fits (sized to the effective batch), or with the
    most memory-saving one when none does."""
    stages = []
    for name, train, *_ in PIPELINES[method]:
        variants = knob_variants(base_setup(train, adaptation, hw, seq_len))
        chosen = None
        for setup in variants:
            est = estimate(spec, setup)
            if hw.fits(est):
                sized, biggest = _micro_batch(spec, setup, hw)
                chosen = StageFit(name, train, sized, estimate(spec, sized), True, biggest, est.device_bytes)
                break
        if chosen is None:
            setup = min(variants, key=lambda s: estimate(spec, s).device_bytes)
            setup = setup.with_(grad_accum=_accum(1, setup.world_size))
            est = estimate(spec, setup)
            chosen = StageFit(name, train, setup, est, False, 0, est.device_bytes)
        stages.append(chosen)
    return Candidate(method, adaptation, seq_len, tuple(stages))


def longest_fitting_seq(spec: ModelSpec, method: str, adaptation: str, hw: Hw, seq_len: int) -> int:
    """The longest sequence (a multiple of SEQ_STEP, at most seq_len) at which every stage fits; 0 if none."""
    longest = seq_len
    for _, train, *_ in PIPELINES[method]:
        base = base_setup(train, adaptation, hw, seq_len)
        best = max(max_seq_len(spec, v, hw.capacity, hw.keep) for v in knob_variants(base))
        longest = min(longest, best)
    return (longest // SEQ_STEP) * SEQ_STEP


@dataclass(frozen=True)
class Search:
    chosen: Candidate
    tried: dict[str, Candidate]  # adaptation -> its candidate at the asked sequence length
    order: tuple[str, ...]
    shortened: bool = False


def search(spec: ModelSpec, method: str, order: tuple[str, ...], hw: Hw, seq_len: int) -> Search:
    """The first adaptation in `order` that fits at `seq_len`; else the one that fits the longest sequence
    (at least MIN_SEQ); else the least memory-hungry attempt, which does not fit."""
    tried = {a: fit_candidate(spec, method, a, hw, seq_len) for a in order}
    for a in order:
        if tried[a].fits:
            return Search(tried[a], tried, order)
    best_seq, best = 0, ""
    for a in order:
        seq = longest_fitting_seq(spec, method, a, hw, seq_len)
        if seq > best_seq:
            best_seq, best = seq, a
    if best and best_seq >= MIN_SEQ:
        candidate = fit_candidate(spec, method, best, hw, best_seq)
        if candidate.fits:
            return Search(candidate, tried, order, shortened=True)
    least = min(tried.values(), key=lambda c: c.base_bytes)
    return Search(least, tried, order)


# ------------------------------------------------------------------------------------------------ time and cost
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


def candidate_time(ctx: "Context", cand: Candidate) -> RunTime | None:
    """Every stage of `cand` priced in hours and dollars on ctx's GPUs for the user's data size; None when the card
    has no speed figures (a size like "24GB") or a stage cannot be timed."""
    from .planning import default_hyper

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


def time_summary(ctx: "Context", cand: Candidate, lang: str = "en") -> TimeSummary | None:
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

    from .planning import default_hyper

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


def _budget_words(ctx: "Context") -> tuple[str, str]:
    a = ctx.answers
    en = [f"{a.time_budget_hours:g} h" for _ in [0] if a.time_budget_hours is not None]
    ko = [f"{a.time_budget_hours:g}시간" for _ in [0] if a.time_budget_hours is not None]
    if a.budget_usd is not None:
        en.append(f"${a.budget_usd:,.0f}")
        ko.append(f"${a.budget_usd:,.0f}")
    return " and ".join(en), ", ".join(ko)


# ------------------------------------------------------------------------------------------------ the decision
@dataclass
class Decision:
    method: str  # a PIPELINES key
    reasons: list[Reason] = field(default_factory=list)
    alternatives: list[Alternative] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (en, ko)
    adapt_pref: tuple[str, ...] = ()  # adaptations a §6 row names, in the order to try
    adapt_rule: str = ""
    data_formats: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    answers: Answers
    spec: ModelSpec
    hw: Hw
    seq_len: int

    @property
    def data(self) -> set[str]:
        return set(self.answers.data)


def _personal(ctx: Context, d: Decision, with_method: bool) -> None:
    """§6 'personal GPU → QLoRA + SFT': QLoRA first on one consumer card when cost is the priority. The row says
    what is feasible on such a card (§5 QLoRA: "개인 GPU로 가능"); with quality as the priority the wizard promises
    full > LoRA > QLoRA, so the memory model decides and QLoRA is the fallback when LoRA does not fit."""
    if not ctx.hw.personal:
        return
    if ctx.answers.priority == "quality":
        extra_en = (f"{ctx.hw.label} is a personal GPU; quality is the priority, so full fine-tuning > LoRA > QLoRA is tried "
                    "and QLoRA is used only when the others do not fit")
        extra_ko = (f"{ctx.hw.label}는 개인 GPU; 품질 우선이므로 Full fine-tuning > LoRA > QLoRA 순으로 시도하고 "
                    "앞의 것이 들어가지 않을 때만 QLoRA를 씁니다")
        d.reasons.append(_row_reason("sel.personal_gpu", extra_en, extra_ko))
        return
    extra_en = f"{ctx.hw.label} is a personal GPU" + ("" if with_method else "; its adaptation (QLoRA) applies")
    extra_ko = f"{ctx.hw.label}는 개인 GPU" + ("" if with_method else "; 그 적응 방식(QLoRA)을 적용")
    d.reasons.append(_row_reason("sel.personal_gpu", extra_en, extra_ko))
    d.adapt_pref, d.adapt_rule = ("qlora", *(a for a in d.adapt_pref if a != "qlora")), "sel.personal_gpu"


def _sft_data(ctx: Context, d: Decision, stage: str = "sft") -> None:
    """SFT trains on instruction pairs (§2); say what happens when there are none."""
    data = ctx.data
    if "instruction_pairs" in data:
        return
    if "raw_text" in data:
        d.data_formats[stage] = "text"
        d.warnings.append((
            "no instruction-response pairs: the SFT stage trains on your raw text with the same next-token loss "
            "(continued pre-training); §2 SFT expects (question, answer) pairs to teach a conversation style",
            "지시-응답 쌍이 없음: SFT 단계가 일반 텍스트를 같은 다음 토큰 손실로 학습합니다 (추가 사전학습). "
            "§2의 SFT는 대화 방법을 가르치려면 (질문, 답변) 쌍이 필요합니다",
        ))
    elif "preference_pairs" in data:
        d.warnings.append((
            f"stage '{stage}' needs instruction-response pairs (§2): use the preferred answer of each preference pair as the response",
            f"'{stage}' 단계에는 지시-응답 쌍이 필요합니다 (§2): 선호도 쌍에서 더 나은 답변을 응답으로 쓰세요",
        ))
    else:
        d.warnings.append((
            f"stage '{stage}' needs instruction-response pairs (§2: 사람이 직접 작성한 instruction-response 쌍) and you listed none",
            f"'{stage}' 단계에는 지시-응답 쌍이 필요한데 (§2: 사람이 직접 작성한 instruction-response 쌍) 없다고 답했습니다",
        ))


def _resources(ctx: Context) -> tuple[bool, list[tuple[str, str]], Search, tuple[str, str]]:
    """§6 'resources ample': RLHF's three stages fit with full fine-tuning or LoRA on hardware that is not a
    personal GPU, within the stated time and money, as the time model predicts them on the user's GPUs for the
    user's data size. Returns the verdict, what limits it, the RLHF search and the time quote (en, ko):
    "RLHF: 3 stages, ~41.0 h, ~$330 on 1x NVIDIA A100 80GB; DPO: ~9.0 h, ~$72" ("" when it cannot be timed)."""
    a = ctx.answers
    rlhf = search(ctx.spec, "rlhf", ("full", "lora"), ctx.hw, ctx.seq_len)
    limits: list[tuple[str, str]] = []
    if ctx.hw.personal:
        limits.append((f"{ctx.hw.label} is a personal GPU", f"{ctx.hw.label}는 개인 GPU"))
    if not (rlhf.chosen.fits and not rlhf.shortened):
        limits.append((
            f"RLHF's three stages do not fit on {ctx.hw.label} with full fine-tuning or LoRA",
            f"RLHF의 세 단계가 {ctx.hw.label}에서 Full fine-tuning이나 LoRA로 들어가지 않음",
        ))
    rt = candidate_time(ctx, rlhf.chosen) if rlhf.chosen.fits else None
    dpo_rt = None
    if rt is not None:
        dpo = search(ctx.spec, "sft+dpo" if "instruction_pairs" in ctx.data else "dpo",
                     QUALITY_ORDER if a.priority == "quality" else COST_ORDER, ctx.hw, ctx.seq_len)
        dpo_rt = candidate_time(ctx, dpo.chosen) if dpo.chosen.fits else None
    _, size_en, size_ko = data_size(a)
    quote = ("", "")
    if rt is not None:
        dpo_en = f"; DPO: {dpo_rt.short}" if dpo_rt else ""
        quote = (f"RLHF: {rt.line}{dpo_en} ({size_en})", f"RLHF: {rt.line}{dpo_en} ({size_ko})")
    if a.time_budget_hours is not None:
        if rt is not None:
            if rt.hours > a.time_budget_hours:
                limits.append((f"{quote[0]}: RLHF is over your time budget of {a.time_budget_hours:g} h",
                               f"{quote[1]}: RLHF가 시간 예산 {a.time_budget_hours:g}시간을 넘음"))
        elif a.time_budget_hours < AMPLE_HOURS:
            limits.append((
                f"a time budget of {a.time_budget_hours:g} h is short for three training stages (no time prediction for "
                f"{ctx.hw.gpu.name}, so the advisor's threshold applies: {AMPLE_HOURS:g} h)",
                f"시간 예산 {a.time_budget_hours:g}시간은 세 단계 학습에 짧음 ({ctx.hw.gpu.name}의 시간 예측이 없어 기준 적용: {AMPLE_HOURS:g}시간)",
            ))
    if a.budget_usd is not None:
        if rt is not None and rt.usd is not None:
            if rt.usd > a.budget_usd:
                limits.append((f"{quote[0]}: RLHF is over your budget of ${a.budget_usd:,.0f}",
                               f"{quote[1]}: RLHF가 예산 ${a.budget_usd:,.0f}를 넘음"))
        elif a.budget_usd < AMPLE_USD:
            limits.append((
                f"a budget of ${a.budget_usd:g} is small for three training stages (no price for {ctx.hw.gpu.name}, "
                f"so the advisor's threshold applies: ${AMPLE_USD:g})",
                f"예산 ${a.budget_usd:g}는 세 단계 학습에 적음 ({ctx.hw.gpu.name}의 가격이 없어 기준 적용: ${AMPLE_USD:g})",
            ))
    return not limits, limits, rlhf, quote


def _rlhf_or_dpo(ctx: Context, d: Decision, goal: str) -> None:
    a = ctx.answers
    data = ctx.data
    ample, limits, rlhf, quote = _resources(ctx)
    wants_best = goal == "best_quality" or (goal != "simple" and a.priority == "quality")
    if goal == "quality_safety":
        d.reasons.append(_row_reason("sel.quality_safety"))
    choose_rlhf = goal != "simple" and wants_best and ample
    close = goal != "simple" and (wants_best != ample or (goal == "best_quality" and a.priority == "cost"))
    limits_en = "; ".join(en for en, _ in limits)
    limits_ko = "; ".join(ko for _, ko in limits)
    if choose_rlhf:
        adaptation = rlhf.chosen.adaptation
        d.method = "rlhf"
        d.reasons.append(_row_reason(
            "sel.best_quality_resources",
            f"resources are ample: RLHF's three stages fit on {ctx.hw.label} with {ADAPTATION_NAME[adaptation]}"
            + (", and quality is the priority" if a.priority == "quality" else "")
            + (f"; {quote[0]}" if quote[0] else "") + (f", within your budget of {_budget_words(ctx)[0]}" if quote[0] and _budget_words(ctx)[0] else ""),
            f"자원 충분: RLHF의 세 단계가 {ctx.hw.label}에서 {ADAPTATION_NAME_KO[adaptation]}로 들어감"
            + (", 품질 우선" if a.priority == "quality" else "")
            + (f"; {quote[1]}" if quote[1] else "") + (f", 예산 {_budget_words(ctx)[1]} 안" if quote[1] and _budget_words(ctx)[1] else ""),
        ))
        steps = _methods()["rlhf"].get("steps", [])
        d.reasons.append(_r(
            "rlhf",
            "§3: RLHF trains in three stages wired by their outputs: SFT → reward model (" + (rules.text(steps[1], "name", "en") if len(steps) > 1 else "reward model")
            + ") → PPO on the SFT model against the reward model",
            "§3: RLHF는 세 단계로 학습: SFT → Reward Model (" + (rules.text(steps[1], "name", "ko") if len(steps) > 1 else "Reward Model")
            + ") → Reward Model 점수가 높아지도록 SFT 모델을 PPO로 최적화",
        ))
        _sft_data(ctx, d)
        d.alternatives.append(_alt(
            "dpo", "cmp.choose_when",
            f"DPO is simpler and cheaper ({_cmp_text('cmp.difficulty', 'dpo', 'en')}; {_cmp_text('cmp.cost', 'dpo', 'en')}), but §6 picks RLHF "
            f"when {rules.text(_cmp()['cmp.choose_when'], 'rlhf', 'en')}; {_cmp_text('cmp.performance', 'dpo', 'en')}",
            f"DPO가 더 간단하고 저렴하지만 ({_cmp_text('cmp.difficulty', 'dpo', 'ko')}; {_cmp_text('cmp.cost', 'dpo', 'ko')}), §6은 "
            f"{rules.text(_cmp()['cmp.choose_when'], 'rlhf', 'ko')}이면 RLHF; {_cmp_text('cmp.performance', 'dpo', 'ko')}",
        ))
    else:
        d.method = "sft+dpo" if "instruction_pairs" in data else "dpo"
        why_en = "you asked to keep it simple" if goal == "simple" else (limits_en or "cost is the priority")
        why_ko = "간단하게 하길 원함" if goal == "simple" else (limits_ko or "비용 우선")
        d.reasons.append(_row_reason("sel.limited_simple", why_en, why_ko))
        d.reasons.append(_r(
            "dpo",
            f"§4: {rules.text(_methods()['dpo'], 'concept', 'en')}"
            + (" Your instruction pairs train an SFT stage first; DPO starts from it." if d.method == "sft+dpo" else ""),
            f"§4: {rules.text(_methods()['dpo'], 'concept', 'ko')}"
            + (" 지시-응답 쌍으로 먼저 SFT 단계를 학습하고 DPO는 그 모델에서 시작합니다." if d.method == "sft+dpo" else ""),
        ))
        if goal == "best_quality":
            d.warnings.append((
                f"you asked for the best quality, but resources are limited ({limits_en or 'cost is the priority'}): "
                "§6 recommends RLHF only with ample resources, so DPO is planned",
                f"최고 품질을 원했지만 자원이 제한적입니다 ({limits_ko or '비용 우선'}): §6은 자원이 충분할 때만 RLHF를 권하므로 DPO를 계획합니다",
            ))
        rlhf_why_en = f"{_cmp_text('cmp.cost', 'rlhf', 'en')}; {_cmp_text('cmp.difficulty', 'rlhf', 'en')}; {_cmp_text('cmp.stability', 'rlhf', 'en')}"
        rlhf_why_ko = f"{_cmp_text('cmp.cost', 'rlhf', 'ko')}; {_cmp_text('cmp.difficulty', 'rlhf', 'ko')}; {_cmp_text('cmp.stability', 'rlhf', 'ko')}"
        if limits:
            rlhf_why_en += f"; {limits_en}"
            rlhf_why_ko += f"; {limits_ko}"
        if quote[0] and quote[0] not in limits_en:  # the predicted price of both, even when no budget was given
            rlhf_why_en += f"; {quote[0]}"
            rlhf_why_ko += f"; {quote[1]}"
        d.alternatives.append(_alt("rlhf", "cmp.cost", rlhf_why_en, rlhf_why_ko))
    if close:
        side = "rlhf" if choose_rlhf else "dpo"
        d.reasons.append(_r(
            "cmp.choose_when",
            f"a close call between RLHF and DPO: {'quality is wanted' if wants_best else 'cost is the priority'} but "
            f"{'resources are limited' if not ample else 'resources are ample'}; §6: RLHF when "
            f"{rules.text(_cmp()['cmp.choose_when'], 'rlhf', 'en')}, DPO when {rules.text(_cmp()['cmp.choose_when'], 'dpo', 'en')} "
            f"→ {side.upper()}",
            f"RLHF와 DPO 사이의 가까운 선택: {'품질을 원하지만' if wants_best else '비용이 우선이지만'} "
            f"{'자원이 제한적' if not ample else '자원은 충분'}; §6: RLHF는 {rules.text(_cmp()['cmp.choose_when'], 'rlhf', 'ko')}, "
            f"DPO는 {rules.text(_cmp()['cmp.choose_when'], 'dpo', 'ko')} → {side.upper()}",
        ))
    _personal(ctx, d, with_method=False)  # never with RLHF: a personal GPU is not 'ample'


def _grpo(ctx: Context, d: Decision, goal: str) -> None:
    d.method = "grpo"
    m = _methods()["grpo"]
    if goal in ("quality_safety", "best_quality", "simple"):
        row = {"quality_safety": "sel.quality_safety", "best_quality": "sel.best_quality_resources", "simple": "sel.limited_simple"}[goal]
        d.reasons.append(_row_reason(row, "but that needs preference pairs, which you do not have", "하지만 선호도 쌍이 필요한데 없음"))
    d.reasons.append(_r(
        "grpo",
        f"a reward signal without preference pairs → GRPO, an addition beyond the source document ({m['source'].removeprefix('paper: ').split(',')[0]}): {rules.text(m, 'concept', 'en')}",
        f"선호도 쌍 없이 보상 신호가 있음 → GRPO (문서 밖 추가 방법, {m['source'].removeprefix('paper: ').split(',')[0]} 외): {rules.text(m, 'concept', 'ko')}",
    ))
    d.alternatives += [
        _alt("rlhf", "rlhf", "§3: RLHF trains its reward model on preference pairs (\"A is better than B\"), which you do not have",
             '§3: RLHF는 선호도 쌍("A가 B보다 낫다")으로 Reward Model을 학습하는데 그 데이터가 없음'),
        _alt("dpo", "dpo", f"§4: {rules.text(_methods()['dpo'], 'data', 'en')} — and you have none",
             f"§4: {rules.text(_methods()['dpo'], 'data', 'ko')} — 그런데 선호도 데이터가 없음"),
    ]
    d.warnings.append((
        "GRPO is not in the source document (a marked addition); it needs a reward function or reward model the script can call",
        "GRPO는 원문에 없는 추가 방법입니다; 스크립트가 호출할 보상 함수나 Reward Model이 필요합니다",
    ))
    _personal(ctx, d, with_method=False)


def _sft_instead(ctx: Context, d: Decision, goal: str) -> None:
    """Preference methods wanted, no preference data nor reward: SFT is what can be trained."""
    d.method = "sft"
    row = {"quality_safety": "sel.quality_safety", "best_quality": "sel.best_quality_resources", "simple": "sel.limited_simple"}.get(goal)
    if row:
        d.reasons.append(_row_reason(row, "but you have no preference pairs, so SFT is planned", "하지만 선호도 쌍이 없어 SFT를 계획"))
    d.reasons.append(_r("sft", f"§2: {rules.text(_methods()['sft'], 'concept', 'en')}", f"§2: {rules.text(_methods()['sft'], 'concept', 'ko')}"))
    d.warnings.append((
        "preference data missing: RLHF and DPO learn from preference pairs (question, answer A, answer B, which is better); "
        "SFT only teaches the answers you have (§2: it does not learn which answer is better)",
        "선호도 데이터 없음: RLHF와 DPO는 선호도 쌍(질문, 답변 A, B, 어느 쪽이 나은지)으로 학습합니다. "
        'SFT는 가진 답변만 학습합니다 (§2: "뭐가 더 좋은 답인지"는 모름)',
    ))
    for m in ("rlhf", "dpo"):
        d.alternatives.append(_alt(m, m, f"needs preference pairs ({rules.text(_methods()[m], 'data', 'en')})",
                                   f"선호도 쌍이 필요함 ({rules.text(_methods()[m], 'data', 'ko')})"))
    _sft_data(ctx, d)
    _personal(ctx, d, with_method=True)


def decide_method(ctx: Context) -> Decision:
    a, data = ctx.answers, ctx.data
    d = Decision(method="sft")
    goal = a.goal
    if goal == "chat_format":
        d.reasons.append(_row_reason("sel.chat_format"))
        d.reasons.append(_r("sft", f"§2: {rules.text(_methods()['sft'], 'concept', 'en')}", f"§2: {rules.text(_methods()['sft'], 'concept', 'ko')}"))
        _sft_data(ctx, d)
        for m in ("dpo", "rlhf"):
            d.alternatives.append(_alt(
                m, "sel.chat_format",
                "§6 teaches a conversation format with SFT alone; preference methods learn which answer is better, which a format does not need",
                "§6: 대화 형식은 SFT만으로 가르침; 선호도 방법은 어떤 답이 나은지를 배우는 것이라 형식 학습에는 필요 없음",
            ))
        _personal(ctx, d, with_method=True)
    elif goal == "domain":
        d.reasons.append(_row_reason("sel.domain"))
        d.adapt_pref, d.adapt_rule = ("lora", "qlora"), "sel.domain"
        if "instruction_pairs" not in data and "raw_text" in data:
            d.data_formats["sft"] = "text"
            d.reasons.append(_r("sft", "your raw domain text trains the SFT stage with the same next-token loss",
                                "도메인 텍스트로 같은 다음 토큰 손실을 써서 SFT 단계를 학습"))
        else:
            _sft_data(ctx, d)
        for m in ("rlhf", "dpo"):
            d.alternatives.append(_alt(m, "sel.domain", "§6: adapting to a domain only needs LoRA/QLoRA + SFT",
                                       "§6: 특정 도메인 적응에는 LoRA/QLoRA + SFT면 충분"))
        if ctx.hw.personal:
            _personal(ctx, d, with_method=True)
    elif goal == "reasoning":
        if "reward_signal" in data:
            _grpo(ctx, d, goal)
        elif "preference_pairs" in data:
            _rlhf_or_dpo(ctx, d, "quality_safety")
        else:
            _sft_instead(ctx, d, goal)
            d.warnings.append(("no reward signal: GRPO needs a reward model or a verifier that checks answers",
                               "보상 신호 없음: GRPO에는 Reward Model이나 정답 검증기가 필요합니다"))
    else:  # quality_safety, best_quality, simple
        if "preference_pairs" in data:
            _rlhf_or_dpo(ctx, d, goal)
        elif "reward_signal" in data:
            _grpo(ctx, d, goal)
        else:
            _sft_instead(ctx, d, goal)
    return d


# ------------------------------------------------------------------------------------------------ sizing
def _order(answers: Answers, d: Decision) -> tuple[str, ...]:
    """The adaptations in the order they are tried; the first that fits (with its margin) wins.
    Quality: full > LoRA > QLoRA, as the priority question promises, unless a row names the adaptations for the
    goal itself (§6 domain → LoRA/QLoRA: those first, in the quality order). Cost: a row's adaptations first
    (the personal GPU's QLoRA, the domain's LoRA/QLoRA), then LoRA > QLoRA > full."""
    if answers.priority == "quality":
        named = tuple(a for a in QUALITY_ORDER if a in d.adapt_pref)
        return tuple(dict.fromkeys((*named, *QUALITY_ORDER)))
    return tuple(dict.fromkeys((*d.adapt_pref, *COST_ORDER)))


def _adaptation_reasons(ctx: Context, d: Decision, found: Search) -> tuple[list[Reason], list[Alternative], list[tuple[str, str]]]:
    reasons, alts, warns = [], [], []
    chosen = found.chosen
    cap = ctx.hw.gpu.memory_gib
    a = chosen.adaptation
    row = _adaptations()[a]
    need = _gib(chosen.device_bytes)
    first = found.order[0]
    if chosen.fits:
        peak_est = chosen.peak.estimate
        kept = ctx.hw.keep.kept(peak_est, ctx.hw.capacity)
        spare = _gib(ctx.hw.keep.spare(peak_est, ctx.hw.capacity))
        fit_en = (f"fits: {need:.1f} GiB at the peak ({chosen.peak.name}) of {cap:g} GiB per card, "
                  f"{spare:.1f} GiB to spare {kept.describe('en')}")
        fit_ko = f"들어감: 최대 {need:.1f} GiB ({chosen.peak.name}) / 카드당 {cap:g} GiB, {kept.describe('ko')} {spare:.1f} GiB 남음"
        paged = max((s.estimate.paged_bytes for s in chosen.stages), default=0)
        if paged:
            fit_en += f", plus {_gib(paged):.2f} GiB of paged optimizer states in CUDA unified memory (see the memory estimate)"
            fit_ko += f", 그리고 CUDA 통합 메모리의 페이지드 옵티마이저 상태 {_gib(paged):.2f} GiB (메모리 추정 참고)"
        if a == first:
            why_en = {"sel.personal_gpu": "the personal-GPU row names it", "sel.domain": "the domain row names it"}.get(
                d.adapt_rule, "quality is the priority" if ctx.answers.priority == "quality" else "cost is the priority")
            why_ko = {"sel.personal_gpu": "개인 GPU 행이 권함", "sel.domain": "도메인 행이 권함"}.get(
                d.adapt_rule, "품질 우선" if ctx.answers.priority == "quality" else "비용 우선")
        else:
            over = found.tried[first]
            why_en = f"{ADAPTATION_NAME[first]} would need {_gib(over.base_bytes):.1f} GiB"
            why_ko = f"{ADAPTATION_NAME_KO[first]}는 {_gib(over.base_bytes):.1f} GiB 필요"
            for skipped in found.order[1:found.order.index(a)]:
                why_en += f", {ADAPTATION_NAME[skipped]} {_gib(found.tried[skipped].base_bytes):.1f} GiB"
                why_ko += f", {ADAPTATION_NAME_KO[skipped]} {_gib(found.tried[skipped].base_bytes):.1f} GiB"
            why_en += f"; {ADAPTATION_NAME[a]} is the next that fits"
            why_ko += f"; {ADAPTATION_NAME_KO[a]}가 다음으로 들어감"
        reasons.append(_r(a, f"{row['name']} (§5: {rules.text(row, 'feature', 'en')}) — {why_en}; {fit_en}",
                          f"{row['name']} (§5: {rules.text(row, 'feature', 'ko')}) — {why_ko}; {fit_ko}"))
        if found.shortened:
            warns.append((
                f"nothing fits at {ctx.seq_len} tokens; sequences are cut to {chosen.seq_len} tokens so that {ADAPTATION_NAME[a]} fits",
                f"{ctx.seq_len} 토큰으로는 들어가는 구성이 없어 {ADAPTATION_NAME_KO[a]}가 들어가도록 시퀀스를 {chosen.seq_len} 토큰으로 자릅니다",
            ))
    if not chosen.fits:
        reasons.append(_r("estimate",
                          f"nothing fits on {ctx.hw.label}; the plan shows the least memory-hungry attempt, {ADAPTATION_NAME[a]} ({_gib(chosen.base_bytes):.1f} GiB at micro-batch 1)",
                          f"{ctx.hw.label}에 들어가는 구성이 없어, 메모리가 가장 적은 시도인 {ADAPTATION_NAME_KO[a]}를 보여 줍니다 (마이크로 배치 1에서 {_gib(chosen.base_bytes):.1f} GiB)"))
    for other, cand in found.tried.items():
        if other == a:
            continue
        orow = _adaptations()[other]
        if not cand.fits:
            alts.append(_alt(other, "estimate",
                             f"needs {_gib(cand.base_bytes):.1f} GiB at micro-batch 1 ({cand.peak.name}), over {cap:g} GiB per card",
                             f"마이크로 배치 1에서도 {_gib(cand.base_bytes):.1f} GiB ({cand.peak.name}) 필요, 카드당 {cap:g} GiB 초과"))
        elif found.order.index(other) > found.order.index(a):
            t_en, t_ko = _time_versus(ctx, cand, chosen)
            alts.append(_alt(other, other,
                             f"fits too ({_gib(cand.base_bytes):.1f} GiB at micro-batch 1{t_en}), but comes later in the order ({_order_text(found.order)}); §5: {rules.text(orow, 'feature', 'en')}",
                             f"들어가긴 함 (마이크로 배치 1에서 {_gib(cand.base_bytes):.1f} GiB{t_ko}), 하지만 우선순위가 낮음 ({_order_text(found.order)}); §5: {rules.text(orow, 'feature', 'ko')}"))
            warns += _faster_within_budget(ctx, cand, chosen)
        else:  # earlier in the order and fits: only when the chosen one was cut to a shorter sequence (not possible) or tied
            alts.append(_alt(other, other, f"{rules.text(orow, 'feature', 'en')} (§5)", f"{rules.text(orow, 'feature', 'ko')} (§5)"))
    return reasons, alts, warns


def _time_versus(ctx: Context, other: Candidate, chosen: Candidate) -> tuple[str, str]:
    """", ~2.1 h, ~$4 against ~3.0 h for full fine-tuning": an alternative adaptation's predicted time next to the
    chosen one's (en, ko); empty when either cannot be timed."""
    o, c = candidate_time(ctx, other), candidate_time(ctx, chosen)
    if o is None or c is None:
        return "", ""
    return (f", {o.short} against {c.short} for {ADAPTATION_NAME[chosen.adaptation]}",
            f", {o.short}, {ADAPTATION_NAME_KO[chosen.adaptation]}는 {c.short}")


def _faster_within_budget(ctx: Context, other: Candidate, chosen: Candidate) -> list[tuple[str, str]]:
    """The chosen adaptation is predicted over the user's time or money while a later one that fits is within it:
    say so with both figures (the order the priority promised is kept; the user decides)."""
    a = ctx.answers
    if a.time_budget_hours is None and a.budget_usd is None:
        return []
    o, c = candidate_time(ctx, other), candidate_time(ctx, chosen)
    if o is None or c is None:
        return []

    def within(rt: RunTime) -> bool:
        ok_time = a.time_budget_hours is None or rt.hours <= a.time_budget_hours
        ok_money = a.budget_usd is None or rt.usd is None or rt.usd <= a.budget_usd
        return ok_time and ok_money

    if within(c) or not within(o):
        return []
    budget_en, budget_ko = _budget_words(ctx)
    return [(f"{ADAPTATION_NAME[chosen.adaptation]} is predicted at {c.short}, over your budget of {budget_en}; "
             f"{ADAPTATION_NAME[other.adaptation]} fits too and is predicted at {o.short}",
             f"{ADAPTATION_NAME_KO[chosen.adaptation]}는 {c.short}로 예산 {budget_ko}를 넘을 것으로 예상됩니다; "
             f"{ADAPTATION_NAME_KO[other.adaptation]}도 들어가며 {o.short}로 예상됩니다")]


def _order_text(order: tuple[str, ...]) -> str:
    return " > ".join(ADAPTATION_NAME_KO[a] for a in order)


def _knob_reasons(ctx: Context, chosen: Candidate) -> list[Reason]:
    out = []
    hw = ctx.hw
    prec = chosen.stages[0].setup.precision
    if prec == "bf16":
        out.append(_r("estimate", f"precision bf16: the {hw.gpu.name} supports it", f"정밀도 bf16: {hw.gpu.name}가 지원"))
    else:
        out.append(_r("estimate", f"precision {prec}: the {hw.gpu.name} has no bf16", f"정밀도 {prec}: {hw.gpu.name}는 bf16 미지원"))
    for s in chosen.stages:
        st = s.setup
        knobs, knobs_ko = [], []
        if st.optimizer != "adamw":
            knobs.append(st.optimizer)
            knobs_ko.append(st.optimizer)
        knobs.append("gradient checkpointing" if st.checkpointing else "no gradient checkpointing")
        knobs_ko.append("그래디언트 체크포인팅" if st.checkpointing else "체크포인팅 없음")
        if st.world_size > 1:
            knobs.append(f"{st.world_size} GPUs, {st.parallel}")
            knobs_ko.append(f"GPU {st.world_size}개, {st.parallel}")
        eff = st.micro_batch * st.grad_accum * st.world_size
        biggest = f" (largest micro-batch that fits: {s.max_micro_batch})" if s.fits else ""
        out.append(_r(
            "estimate",
            f"{s.name}: micro-batch {st.micro_batch} × gradient accumulation {st.grad_accum} × {st.world_size} GPU = effective batch {eff}{biggest}, "
            f"{st.seq_len} tokens, {', '.join(knobs)}",
            f"{s.name}: 마이크로 배치 {st.micro_batch} × 그래디언트 누적 {st.grad_accum} × GPU {st.world_size} = 유효 배치 {eff}"
            + (f" (들어가는 최대 마이크로 배치: {s.max_micro_batch})" if s.fits else "") + f", {st.seq_len} 토큰, {', '.join(knobs_ko)}",
        ))
    adaptation = chosen.adaptation
    if adaptation != "full":
        st = chosen.stages[0].setup
        quant = f", {st.quant_type}{' + double quant' if st.double_quant else ''} 4-bit base" if adaptation == "qlora" else ""
        out.append(_r(adaptation, f"LoRA r={st.lora_r}, alpha={st.lora_alpha}, targets {st.lora_targets}, dropout {st.lora_dropout}{quant}",
                      f"LoRA r={st.lora_r}, alpha={st.lora_alpha}, 대상 {st.lora_targets}, dropout {st.lora_dropout}{quant}"))
    return out


def _hyper_reasons(plan: Plan) -> list[Reason]:
    out = []
    for stage in plan.stages:
        rid = hyper_rule(stage.setup.train, stage.setup.method)
        h = stage.hyper
        beta = f", beta {h.beta:g}" if stage.setup.train in ("dpo", "ppo", "grpo") else ""
        out.append(_r(rid, f"{stage.name}: learning rate {h.learning_rate:g}, {h.epochs:g} epoch(s){beta} (addition: published recipe)",
                      f"{stage.name}: 학습률 {h.learning_rate:g}, {h.epochs:g} 에폭{beta} (추가: 공개된 레시피)"))
    return out


def rule_of_thumb(adaptation: str, params: int) -> tuple[float, float]:
    """§5's VRAM figure for a 7B model (GB), scaled by params / 7e9; returned as (GB, GiB)."""
    gb = _adaptations()[adaptation]["vram_7b_gb"] * params / DOC_PARAMS
    return gb, gb * 1e9 / GIB


def _rule_of_thumb_note(adaptation: str, params: int, peak: StageFit, lang: str) -> tuple[float, str]:
    gb7 = _adaptations()[adaptation]["vram_7b_gb"]
    gb, gib = rule_of_thumb(adaptation, params)
    scale = params / DOC_PARAMS
    est = peak.estimate
    ours = _gib(est.device_bytes)
    if abs(scale - 1) < 0.05:
        basis_en, basis_ko = f"§5: ~{gb7} GB for a 7B model ({gib:.1f} GiB)", f"§5: 7B 모델 기준 ~{gb7}GB ({gib:.1f} GiB)"
    else:
        basis_en = f"§5: ~{gb7} GB for a 7B model, scaled by {params / 1e9:.2f}B / 7B to ~{gb:.1f} GB ({gib:.1f} GiB)"
        basis_ko = f"§5: 7B 모델 기준 ~{gb7}GB, {params / 1e9:.2f}B / 7B 비율로 환산해 ~{gb:.1f}GB ({gib:.1f} GiB)"
    gap = (ours - gib) / gib if gib else 0.0
    at_one_en = at_one_ko = ""
    if est.setup.micro_batch > 1:
        at_one_en = f"; at micro-batch 1 it would be {_gib(peak.base_bytes):.1f} GiB"
        at_one_ko = f"; 마이크로 배치 1이면 {_gib(peak.base_bytes):.1f} GiB"
    if abs(gap) <= RULE_OF_THUMB_GAP:
        tail_en, tail_ko = f"our estimate {ours:.1f} GiB agrees within {RULE_OF_THUMB_GAP:.0%}", f"추정치 {ours:.1f} GiB와 {RULE_OF_THUMB_GAP:.0%} 이내로 일치"
    else:
        cats = est.categories()
        st = est.setup
        paged_en = f" (+{_gib(est.paged_bytes):.2f} paged in unified memory)" if est.paged_bytes else ""
        paged_ko = f" (+통합 메모리에 페이지드 {_gib(est.paged_bytes):.2f})" if est.paged_bytes else ""
        parts = f"weights {_gib(cats['parameters']):.1f}, optimizer {_gib(cats['optimizer']):.1f}{paged_en}, gradients {_gib(cats['gradients']):.1f}, " \
                f"activations and temporaries {_gib(cats['activations'] + cats['temporaries']):.1f} GiB"
        parts_ko = f"가중치 {_gib(cats['parameters']):.1f}, 옵티마이저 {_gib(cats['optimizer']):.1f}{paged_ko}, 그래디언트 {_gib(cats['gradients']):.1f}, " \
                   f"활성값·임시 버퍼 {_gib(cats['activations'] + cats['temporaries']):.1f} GiB"
        setting = f"{peak.name} stage, {st.optimizer}, micro-batch {st.micro_batch} × {st.seq_len} tokens, checkpointing {'on' if st.checkpointing else 'off'}"
        word = "higher" if gap > 0 else "lower"
        tail_en = (f"our estimate is {ours:.1f} GiB ({abs(gap):.0%} {word}): the document's single figure ignores batch, sequence "
                   f"length, optimizer and training kind; ours prices this run ({setting}): {parts}{at_one_en}")
        tail_ko = (f"추정치 {ours:.1f} GiB ({abs(gap):.0%} {'높음' if gap > 0 else '낮음'}): 문서의 수치는 배치, 시퀀스 길이, 옵티마이저, "
                   f"학습 종류를 고려하지 않은 단일 값이고, 추정치는 이 실행({setting})을 계산한 것: {parts_ko}{at_one_ko}")
    return round(gib, 2), f"{basis_en}; {tail_en}" if lang == "en" else f"{basis_ko}; {tail_ko}"


# ------------------------------------------------------------------------------------------------ nothing fits
def _smallest_card(ctx: Context, method: str, order: tuple[str, ...]) -> tuple[Gpu, Candidate] | None:
    for gpu in sorted(gpus().values(), key=lambda g: g.memory_gib):
        if gpu.memory_gib <= ctx.hw.gpu.memory_gib:
            continue
        hw = Hw(gpu, ctx.hw.count, ctx.hw.margin)
        for a in order:
            cand = fit_candidate(ctx.spec, method, a, hw, ctx.seq_len)
            if cand.fits:
                return gpu, cand
    return None


def _more_gpus(ctx: Context, method: str, order: tuple[str, ...]) -> tuple[int, Candidate] | None:
    for n in (2, 4, 8):
        if n <= ctx.hw.count:
            continue
        hw = Hw(ctx.hw.gpu, n, ctx.hw.margin)
        for a in order:
            cand = fit_candidate(ctx.spec, method, a, hw, ctx.seq_len)
            if cand.fits:
                return n, cand
    return None


def _smaller_models(ctx: Context, method: str, order: tuple[str, ...], limit: int = 2) -> list[tuple[str, str, Candidate]]:
    from estimators.catalog import catalog, shorthands
    from estimators.params import count_params

    own = count_params(ctx.spec).total
    specs = catalog()
    sized = sorted(((count_params(specs[key]).total, short, key) for short, key in shorthands().items()), reverse=True)
    out = []
    for params, short, key in sized:
        if params >= own:
            continue
        for a in order:
            cand = fit_candidate(specs[key], method, a, ctx.hw, min(ctx.seq_len, specs[key].max_positions))
            if cand.fits:
                out.append((short, specs[key].name, cand))
                break
        if len(out) == limit:
            break
    return out


def _nothing_fits(ctx: Context, method: str, order: tuple[str, ...], found: Search) -> list[tuple[str, str]]:
    c = found.chosen
    en = (f"nothing fits: even {ADAPTATION_NAME[c.adaptation]} with 8-bit paged optimizer states and gradient checkpointing "
          f"needs {_gib(c.base_bytes):.1f} GiB at micro-batch 1 ({c.peak.name}) on {ctx.hw.label}, and shortening sequences to {MIN_SEQ} tokens is not enough")
    ko = (f"들어가는 구성이 없음: {ADAPTATION_NAME_KO[c.adaptation]}에 8비트 페이지드 옵티마이저와 그래디언트 체크포인팅을 써도 "
          f"{ctx.hw.label}에서 마이크로 배치 1에도 {_gib(c.base_bytes):.1f} GiB ({c.peak.name}) 필요, 시퀀스를 {MIN_SEQ} 토큰으로 줄여도 부족")
    out = [(en, ko)]
    more = _more_gpus(ctx, method, order)
    if more:
        n, cand = more
        out.append((f"what would fit: {n}× {ctx.hw.gpu.name} with {ADAPTATION_NAME[cand.adaptation]} ({_gib(cand.base_bytes):.1f} GiB per card at micro-batch 1)",
                     f"들어가는 대안: {ctx.hw.gpu.name} {n}개로 {ADAPTATION_NAME_KO[cand.adaptation]} (마이크로 배치 1에서 카드당 {_gib(cand.base_bytes):.1f} GiB)"))
    card = _smallest_card(ctx, method, order)
    if card:
        gpu, cand = card
        out.append((f"what would fit: {ctx.hw.count}× {gpu.name} ({gpu.memory_gib:g} GiB) with {ADAPTATION_NAME[cand.adaptation]} ({_gib(cand.base_bytes):.1f} GiB at micro-batch 1) — `--gpu {gpu.id}`",
                     f"들어가는 대안: {gpu.name} ({gpu.memory_gib:g} GiB) {ctx.hw.count}개에서 {ADAPTATION_NAME_KO[cand.adaptation]} (마이크로 배치 1에서 {_gib(cand.base_bytes):.1f} GiB) — `--gpu {gpu.id}`"))
    smaller = _smaller_models(ctx, method, order)
    if smaller:
        listed = ", ".join(f"{short} ({name}) with {ADAPTATION_NAME[c.adaptation]}, {_gib(c.base_bytes):.1f} GiB" for short, name, c in smaller)
        listed_ko = ", ".join(f"{short} ({name}) {ADAPTATION_NAME_KO[c.adaptation]}, {_gib(c.base_bytes):.1f} GiB" for short, name, c in smaller)
        out.append((f"what would fit on {ctx.hw.label}: a smaller model — {listed} (`--model {smaller[0][0]}`)",
                     f"{ctx.hw.label}에 들어가는 대안: 더 작은 모델 — {listed_ko} (`--model {smaller[0][0]}`)"))
    if len(out) == 1:
        out.append(("no GPU in the table, no smaller catalog model and no more GPUs make it fit by the memory model",
                    "표의 어떤 GPU, 더 작은 카탈로그 모델, 더 많은 GPU로도 메모리 모델상 들어가지 않습니다"))
    return out


# ------------------------------------------------------------------------------------------------ advise
def _data_warnings(ctx: Context, d: Decision) -> list[tuple[str, str]]:
    n = ctx.answers.data_count
    if n is None:
        return []
    out = []
    if n < FEW_EXAMPLES:
        out.append((f"only {n:,} examples: too little data for a reliable run; expect overfitting (use fewer epochs or collect more)",
                    f"예제가 {n:,}개뿐: 학습하기에 너무 적습니다. 과적합이 예상됩니다 (에폭을 줄이거나 데이터를 더 모으세요)"))
    if any(stage[1] == "sft" for stage in PIPELINES[d.method]) and n < SFT_SCALE:
        row = _methods()["sft"]
        out.append((f"{n:,} examples is below the scale §2 describes for SFT ({rules.text(row, 'data_scale', 'en')})",
                    f"예제 {n:,}개는 §2가 말하는 SFT 규모보다 적습니다 ({rules.text(row, 'data_scale', 'ko')})"))
    return out


def _over_budget(ctx: Context, t: TimeSummary | None) -> list[tuple[str, str]]:
    """The planned run itself over the user's time or money (whatever method was chosen): say so with the figures."""
    a, out = ctx.answers, []
    if t is None:
        return out
    if a.time_budget_hours is not None and t.hours > a.time_budget_hours:
        out.append((f"the plan is predicted to take ~{t.hours:.1f} h ({t.hours_low:.1f}-{t.hours_high:.1f} h), over your time budget of "
                    f"{a.time_budget_hours:g} h: train on fewer examples or epochs, or add GPUs",
                    f"계획의 예상 시간 ~{t.hours:.1f}시간 ({t.hours_low:.1f}-{t.hours_high:.1f}시간)이 시간 예산 {a.time_budget_hours:g}시간을 넘습니다: "
                    "예제나 에폭을 줄이거나 GPU를 늘리세요"))
    if a.budget_usd is not None and t.usd is not None and t.usd > a.budget_usd:
        out.append((f"the plan is predicted to cost ~${t.usd:,.0f}, over your budget of ${a.budget_usd:,.0f}",
                    f"계획의 예상 비용 ~${t.usd:,.0f}가 예산 ${a.budget_usd:,.0f}를 넘습니다"))
    return out


def _context(answers: Answers, margin: str | None = None) -> tuple[Context, object]:
    try:
        spec, ref = model_spec(answers.model)
        gpu = find_gpu(answers.gpu)
        keep = parse_margin(margin, display=gpu.consumer) if margin not in (None, "", "auto") else None
    except EstimateError as exc:
        raise AdvisorError(str(exc)) from None
    seq = min(answers.seq_len, spec.max_positions)
    return Context(answers, spec, Hw(gpu, answers.gpu_count, keep), seq), ref


def advise(answers: Answers, lang: str = "en", margin: str | None = None) -> Plan:
    """The plan for these answers. `lang` ("en" or "ko") is the language of the warnings and the rule-of-thumb
    note; reasons and alternatives carry both. `margin` (`--margin`: "1.5GiB", "800MiB", "10%", "auto"/None)
    replaces the automatic margin a plan keeps free (estimators/margin.py)."""
    if lang not in rules.LANGS:
        raise AdvisorError(f"unknown language '{lang}'; valid: {', '.join(rules.LANGS)}")
    ctx, ref = _context(answers, margin)
    warns: list[tuple[str, str]] = []
    if answers.seq_len > ctx.spec.max_positions:
        warns.append((f"sequence length {answers.seq_len} exceeds {ctx.spec.name}'s {ctx.spec.max_positions} positions; capped at {ctx.seq_len}",
                      f"시퀀스 길이 {answers.seq_len}이 {ctx.spec.name}의 최대 위치 {ctx.spec.max_positions}를 넘어 {ctx.seq_len}으로 제한"))
    d = decide_method(ctx)
    order = _order(answers, d)
    found = search(ctx.spec, d.method, order, ctx.hw, ctx.seq_len)
    chosen = found.chosen
    a_reasons, a_alts, a_warns = _adaptation_reasons(ctx, d, found)
    warns = warns + d.warnings + _data_warnings(ctx, d) + a_warns
    if not chosen.fits:
        warns += _nothing_fits(ctx, d.method, order, found)
    setups = {s.name: s.setup for s in chosen.stages}
    plan = build_plan(answers.model, chosen.stages[0].setup, method=d.method, gpu=answers.gpu,
                      stage_setups=setups, data_formats=d.data_formats)
    plan.model = ref
    plan.reasons = d.reasons + a_reasons + _knob_reasons(ctx, chosen) + _hyper_reasons(plan)
    plan.alternatives = d.alternatives + a_alts
    peak = chosen.peak
    rot_gib, note = _rule_of_thumb_note(chosen.adaptation, ref.params_total, peak, lang)
    plan.estimate = estimate_summary({st.name: st.estimate for st in chosen.stages}, ctx.hw.capacity, rot_gib, note,
                                     ctx.hw.keep, lang, ctx.hw.gpu.pcie_gbs)
    plan.time = time_summary(ctx, chosen, lang) if chosen.fits else None
    warns += _over_budget(ctx, plan.time)
    idx = 0 if lang == "en" else 1
    plan.warnings = list(dict.fromkeys(w[idx] for w in warns))
    plan.answers = answers.to_data()
    return plan
