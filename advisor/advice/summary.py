"""A plan's memory summary (EstimateSummary): the peak stage against the card with the margin kept, paged optimizer
states and where they live, and §5's rule-of-thumb figure next to our estimate with the note that explains a gap."""

from __future__ import annotations

from estimators.dtypes import GIB
from estimators.errors import EstimateError
from estimators.gpus import Gpu, find_gpu
from estimators.margin import Margin, paged_placement, parse_margin
from estimators.result import Estimate

from ..messages import Pair, both, join
from ..plan import Plan
from ..plan_priced import EstimateSummary, StageMemory
from .fitting import StageFit
from .rows import adaptation_rows

RULE_OF_THUMB_GAP = 0.25  # explain the §5 figure when our estimate differs from it by more than this
DOC_PARAMS = 7e9  # §5's table is "7B 모델 기준"


def gib(nbytes: float) -> float:
    return round(nbytes / GIB, 2)


def estimate_summary(
    stages: dict[str, Estimate],
    capacity: float,
    rule_of_thumb_gib: float | None,
    note: tuple[str, str | None],
    margin: Margin | None = None,
    pcie_gbs: float | None = None,
) -> EstimateSummary:
    """A plan's EstimateSummary from each stage's estimate: the stage needing the most memory is the peak, and
    the plan fits when every stage does with the margin kept (estimators/margin.py: the estimate's measured error
    and, on a consumer card, the display). Headroom is what is left after the margin. Paged optimizer states
    (unified memory, outside the on-card figure) are reported with where they live. `note` is the rule-of-thumb
    note (en, ko). Every note is kept in both languages. advise() and the wizard's what-ifs both call this."""
    margin = margin or Margin()
    name = max(stages, key=lambda n: stages[n].device_bytes)
    peak = stages[name]
    tightest = min(stages, key=lambda n: margin.spare(stages[n], capacity))
    kept = margin.kept(stages[tightest], capacity)
    paged_name = max(stages, key=lambda n: stages[n].paged_bytes)
    paged = paged_placement(stages[paged_name], capacity, margin, pcie_gbs)
    paged_note = paged_notes(stages, capacity, margin, pcie_gbs) or ("", "")
    tight = stages[tightest]
    return EstimateSummary(
        peak_allocated_gib=gib(peak.peak_allocated),
        peak_reserved_gib=gib(peak.peak_reserved),
        device_gib=gib(peak.device_bytes),
        peak_phase=f"{name}: {peak.peak_phase}",
        fits=all(margin.fits(e, capacity) for e in stages.values()),
        headroom_gib=gib(margin.spare(stages[tightest], capacity)),
        rule_of_thumb_gib=rule_of_thumb_gib,
        rule_of_thumb_note=note[0],
        rule_of_thumb_note_ko=note[1],
        margin_gib=gib(kept.total),
        margin_note=margin.verdict(tight, capacity, "en"),
        margin_note_ko=margin.verdict(tight, capacity, "ko"),
        paged_gib=gib(paged.total) if paged else 0.0,
        paged_spilled_gib=gib(paged.spilled) if paged else 0.0,
        paged_note=paged_note[0],
        paged_note_ko=paged_note[1],
        margin_text=margin.text,
    )


def stage_memory(est: Estimate, fits: bool) -> StageMemory:
    """What a plan keeps of one stage's estimate: the figures the printer and the README show."""
    return StageMemory(
        peak_allocated_gib=gib(est.peak_allocated),
        peak_reserved_gib=gib(est.peak_reserved),
        device_gib=gib(est.device_bytes),
        peak_phase=est.peak_phase,
        fits=fits,
    )


def judged_memory(plan: Plan, est: Estimate) -> StageMemory:
    """A stage's memory judged as the plan was judged: its margin, on the plan's memory per GPU (after a what-if, or
    for a plan saved before plans kept their stages' memory)."""
    return stage_memory(est, plan_margin(plan).fits(est, plan.hardware.memory_gib * GIB))


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


def paged_notes(stages: dict[str, Estimate], capacity: float, margin: Margin, pcie_gbs: float | None) -> Pair | None:
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


def rule_of_thumb_note(adaptation: str, params: int, peak: StageFit) -> tuple[float, Pair]:
    """§5's figure for this model (GiB) and the note (en, ko) that compares it with our estimate of the peak stage."""
    gb7 = adaptation_rows()[adaptation]["vram_7b_gb"]
    gb, doc_gib = rule_of_thumb(adaptation, params)
    scale = params / DOC_PARAMS
    est = peak.estimate
    ours = gib(est.device_bytes)
    if abs(scale - 1) < 0.05:
        basis = both("note.thumb_basis", gb7=gb7, gib=doc_gib)
    else:
        basis = both("note.thumb_basis_scaled", gb7=gb7, billions=params / 1e9, gb=gb, gib=doc_gib)
    gap = (ours - doc_gib) / doc_gib if doc_gib else 0.0
    if abs(gap) <= RULE_OF_THUMB_GAP:
        tail = both("note.thumb_agrees", ours=ours, gap=RULE_OF_THUMB_GAP)
    else:
        cats = est.categories()
        st = est.setup
        parts = both(
            "part.thumb_parts",
            weights=gib(cats["parameters"]),
            optimizer=gib(cats["optimizer"]),
            paged=both("part.thumb_paged", gib=gib(est.paged_bytes)) if est.paged_bytes else "",
            gradients=gib(cats["gradients"]),
            activations=gib(cats["activations"] + cats["temporaries"]),
        )
        setting = both(
            "part.thumb_setting",
            stage=peak.name,
            optimizer=st.optimizer,
            micro_batch=st.micro_batch,
            seq=st.seq_len,
            checkpointing="on" if st.checkpointing else "off",
        )
        at_one = both("part.at_micro_batch_one", gib=gib(peak.base_bytes)) if est.setup.micro_batch > 1 else ""
        tail = both(
            "note.thumb_differs",
            ours=ours,
            gap=abs(gap),
            direction=both("part.higher" if gap > 0 else "part.lower"),
            setting=setting,
            parts=parts,
            at_one=at_one,
        )
    return round(doc_gib, 2), join([basis, tail])
