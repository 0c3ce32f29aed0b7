"""What every training kind's plan is built from: `KindPlan` (the single-GPU phases parallel.per_gpu splits), the
policy's SFT phases on the sequences the kind trains on, and the edits the kinds make to those phases (drop or
re-price the LM-head terms, keep the weights alone, add a frozen reference copy).

Its own module because estimators/kinds.py and kind_ppo.py both build on it; the TRL sources behind each edit are
listed in kinds.py."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from . import terms as t
from .effective import effective_setup
from .kind_models import reference_weights
from .model import ModelSpec
from .params import ParamCounts
from .result import FUSED_BACKWARD, FUSED_FORWARD, FUSED_SAVED, LOGITS_BACKWARD, LOGITS_FORWARD, Estimate
from .setup import Setup
from .sft import estimate_sft

# Names of the SFT LM-head terms (estimators/sft.py): the HF loss's logits, or TRL's fused head (Setup.loss).
LOGIT_TERMS = (LOGITS_FORWARD, LOGITS_BACKWARD)
FUSED_TERMS = {FUSED_SAVED: t.fused_head_saved, FUSED_FORWARD: t.fused_head_forward, FUSED_BACKWARD: t.fused_head_backward}


@dataclass
class KindPlan:
    """Single-GPU phases of one kind, and what parallel.per_gpu needs to split them."""

    spec: ModelSpec  # the trained model's architecture (units gathered by ZeRO-3/FSDP)
    params: ParamCounts
    trainable: int
    phases: dict[str, list[t.TermValue]]
    paged: int = 0
    master_params: int = 0  # trainable parameters stored in 16 bits (ZeRO adds fp32 masters)
    frozen_sharded: bool = True
    warnings: list[str] = field(default_factory=list)


def term(name: str, category: str, nbytes: float, note: str) -> t.TermValue:
    """A term a kind adds, its bytes rounded down to whole bytes."""
    return t.TermValue(name, category, int(nbytes), note)


def sft_phases(m: ModelSpec, setup: Setup, **changes) -> Estimate:
    """The policy's single-GPU SFT phases on the sequences a kind trains on."""
    base = setup.with_(train="sft", parallel="none", gpus=1, nodes=1, offload_optimizer=False, offload_params=False, ref_model="auto", **changes)
    return estimate_sft(m, effective_setup(m, base))


def phase_lists(est: Estimate) -> dict[str, list[t.TermValue]]:
    """An estimate's phases as lists, for a plan to extend."""
    return {k: list(v) for k, v in est.phases.items()}


def master_params(setup: Setup, n: int) -> int:
    """Of `n` trainable parameters, those stored in 16 bits (full fine-tuning): ZeRO keeps fp32 masters for them."""
    return n if setup.adaptation == "full" and t.weight_bytes_per_param(setup) == 2 else 0


def is_logits(v: t.TermValue, m: ModelSpec, setup: Setup) -> bool:
    """The SFT head's B x S x V terms, by name (estimators/sft.py names them). Not by size: a term of another kind can
    have the same byte count (Llama 3.2 3B, 2 x 1024 tokens: the logits' 2048 x V x 12 bytes equal the embedding
    gradient's V x h x 8), and was then re-priced on completion tokens, so GRPO's sweep dipped at seq 1024."""
    return v.name in LOGIT_TERMS


def scored_logits(v: t.TermValue, m: ModelSpec, s_all: Setup, s_scored: Setup) -> t.TermValue:
    """GRPO scores only the completion tokens (TRL passes logits_to_keep = completion length and labels the
    prompt -100, which the fused head's compact path skips), so the SFT head terms are re-priced, with the same
    functions, on micro-batch x response_len tokens (the fused head's last hidden state still spans every token)."""
    if v.name in FUSED_TERMS:
        nbytes = FUSED_TERMS[v.name](m, s_all, s_scored.tokens)
        return t.TermValue(v.name, v.category, nbytes, f"{v.note}; completion tokens scored")
    if not is_logits(v, m, s_all):
        return v
    backward = v.name == LOGIT_TERMS[1]
    nbytes = t.logits_backward(m, s_scored) if backward else t.logits_forward(m, s_scored)
    return t.TermValue(v.name, v.category, nbytes, f"{v.note}; completion tokens only")


def forward_name(phases: dict) -> str:
    """The phase that runs the policy's forward (the first one when none is named "forward")."""
    return "forward" if "forward" in phases else next(iter(phases))


def steady_terms(values: Iterable[t.TermValue]) -> list[t.TermValue]:
    """Terms alive for the whole step: weights and optimizer states (no gradients: zero_grad(set_to_none))."""
    return [v for v in values if v.category in ("parameters", "optimizer")]


def reference_terms(m: ModelSpec, setup: Setup, mode: str) -> list[t.TermValue]:
    """The reference model's weights: a frozen copy in "copy" mode (kind_models.reference_mode), else none."""
    if mode != "copy":
        return []
    return [term("reference model", "parameters", reference_weights(m, setup), "frozen copy of the policy, same dtype and quantisation")]
