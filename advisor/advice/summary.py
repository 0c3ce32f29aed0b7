"""A plan's memory summary (EstimateSummary): the peak stage against the card with the margin kept, paged optimizer
states and where they live, and §5's rule-of-thumb figure next to our estimate with the note that explains a gap."""

from __future__ import annotations

from estimators.dtypes import GIB
from estimators.errors import EstimateError
from estimators.gpus import Gpu, find_gpu
from estimators.margin import Margin, paged_placement, parse_margin
from estimators.result import Estimate

from ..plan import EstimateSummary, Plan, StageMemory
from .fitting import StageFit
from .rows import adaptation_rows

RULE_OF_THUMB_GAP = 0.25  # explain the §5 figure when our estimate differs from it by more than this
DOC_PARAMS = 7e9  # §5's table is "7B 모델 기준"


def gib(nbytes: float) -> float:
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
        peak_allocated_gib=gib(peak.peak_allocated),
        peak_reserved_gib=gib(peak.peak_reserved),
        device_gib=gib(peak.device_bytes),
        peak_phase=f"{name}: {peak.peak_phase}",
        fits=all(margin.fits(e, capacity) for e in stages.values()),
        headroom_gib=gib(margin.spare(stages[tightest], capacity)),
        rule_of_thumb_gib=rule_of_thumb_gib,
        rule_of_thumb_note=note,
        margin_gib=gib(kept.total),
        margin_note=margin.verdict(stages[tightest], capacity, lang),
        paged_gib=gib(paged.total) if paged else 0.0,
        paged_spilled_gib=gib(paged.spilled) if paged else 0.0,
        paged_note=(notes[0] if lang == "en" else notes[1]) if notes else "",
        margin_text=margin.text,
    )


def stage_memory(fit: StageFit) -> StageMemory:
    """What a plan keeps of one stage's estimate: the figures the printer and the README show."""
    est = fit.estimate
    return StageMemory(peak_allocated_gib=gib(est.peak_allocated), peak_reserved_gib=gib(est.peak_reserved),
                       device_gib=gib(est.device_bytes), peak_phase=est.peak_phase, fits=fit.fits)


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


def rule_of_thumb(adaptation: str, params: int) -> tuple[float, float]:
    """§5's VRAM figure for a 7B model (GB), scaled by params / 7e9; returned as (GB, GiB)."""
    gb = adaptation_rows()[adaptation]["vram_7b_gb"] * params / DOC_PARAMS
    return gb, gb * 1e9 / GIB


def rule_of_thumb_note(adaptation: str, params: int, peak: StageFit, lang: str) -> tuple[float, str]:
    gb7 = adaptation_rows()[adaptation]["vram_7b_gb"]
    gb, doc_gib = rule_of_thumb(adaptation, params)
    scale = params / DOC_PARAMS
    est = peak.estimate
    ours = gib(est.device_bytes)
    if abs(scale - 1) < 0.05:
        basis_en, basis_ko = f"§5: ~{gb7} GB for a 7B model ({doc_gib:.1f} GiB)", f"§5: 7B 모델 기준 ~{gb7}GB ({doc_gib:.1f} GiB)"
    else:
        basis_en = f"§5: ~{gb7} GB for a 7B model, scaled by {params / 1e9:.2f}B / 7B to ~{gb:.1f} GB ({doc_gib:.1f} GiB)"
        basis_ko = f"§5: 7B 모델 기준 ~{gb7}GB, {params / 1e9:.2f}B / 7B 비율로 환산해 ~{gb:.1f}GB ({doc_gib:.1f} GiB)"
    gap = (ours - doc_gib) / doc_gib if doc_gib else 0.0
    at_one_en = at_one_ko = ""
    if est.setup.micro_batch > 1:
        at_one_en = f"; at micro-batch 1 it would be {gib(peak.base_bytes):.1f} GiB"
        at_one_ko = f"; 마이크로 배치 1이면 {gib(peak.base_bytes):.1f} GiB"
    if abs(gap) <= RULE_OF_THUMB_GAP:
        tail_en, tail_ko = f"our estimate {ours:.1f} GiB agrees within {RULE_OF_THUMB_GAP:.0%}", f"추정치 {ours:.1f} GiB와 {RULE_OF_THUMB_GAP:.0%} 이내로 일치"
    else:
        cats = est.categories()
        st = est.setup
        paged_en = f" (+{gib(est.paged_bytes):.2f} paged in unified memory)" if est.paged_bytes else ""
        paged_ko = f" (+통합 메모리에 페이지드 {gib(est.paged_bytes):.2f})" if est.paged_bytes else ""
        parts = f"weights {gib(cats['parameters']):.1f}, optimizer {gib(cats['optimizer']):.1f}{paged_en}, gradients {gib(cats['gradients']):.1f}, " \
                f"activations and temporaries {gib(cats['activations'] + cats['temporaries']):.1f} GiB"
        parts_ko = f"가중치 {gib(cats['parameters']):.1f}, 옵티마이저 {gib(cats['optimizer']):.1f}{paged_ko}, 그래디언트 {gib(cats['gradients']):.1f}, " \
                   f"활성값·임시 버퍼 {gib(cats['activations'] + cats['temporaries']):.1f} GiB"
        setting = f"{peak.name} stage, {st.optimizer}, micro-batch {st.micro_batch} × {st.seq_len} tokens, checkpointing {'on' if st.checkpointing else 'off'}"
        word = "higher" if gap > 0 else "lower"
        tail_en = (f"our estimate is {ours:.1f} GiB ({abs(gap):.0%} {word}): the document's single figure ignores batch, sequence "
                   f"length, optimizer and training kind; ours prices this run ({setting}): {parts}{at_one_en}")
        tail_ko = (f"추정치 {ours:.1f} GiB ({abs(gap):.0%} {'높음' if gap > 0 else '낮음'}): 문서의 수치는 배치, 시퀀스 길이, 옵티마이저, "
                   f"학습 종류를 고려하지 않은 단일 값이고, 추정치는 이 실행({setting})을 계산한 것: {parts_ko}{at_one_ko}")
    return round(doc_gib, 2), f"{basis_en}; {tail_en}" if lang == "en" else f"{basis_ko}; {tail_ko}"
