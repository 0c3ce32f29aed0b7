"""Context: one advice run's answers with the model spec, the GPUs and the sequence length they name, built once
by build_context and read by the decision, the sizing and the time model."""

from __future__ import annotations

from dataclasses import dataclass

from estimators.errors import EstimateError
from estimators.gpus import find_gpu
from estimators.margin import parse_margin
from estimators.model import ModelSpec

from ..answers import Answers
from ..errors import AdvisorError
from ..messages import Pair, both
from ..plan import ModelRef
from ..planning import model_spec
from .hardware import Hw


@dataclass(frozen=True)
class Context:
    answers: Answers
    spec: ModelSpec
    hw: Hw
    seq_len: int

    @property
    def data(self) -> set[str]:
        return set(self.answers.data)


def build_context(answers: Answers, margin: str | None = None) -> tuple[Context, ModelRef]:
    try:
        spec, ref = model_spec(answers.model)
        gpu = find_gpu(answers.gpu)
        keep = parse_margin(margin, display=gpu.consumer) if margin not in (None, "", "auto") else None
    except EstimateError as exc:
        raise AdvisorError(str(exc)) from None
    return Context(answers, spec, Hw(gpu, answers.gpu_count, keep), capped_seq(spec, answers.seq_len)[0]), ref


def capped_seq(spec: ModelSpec, asked: int) -> tuple[int, Pair | None]:
    """The sequence length a plan trains for `asked`: capped at the model's positions (past them the model has no
    position to run at, and the trainer truncates), with the warning that says so; None when nothing was capped.
    advise and the wizard's what-if both go through here."""
    if asked <= spec.max_positions:
        return asked, None
    return spec.max_positions, both("warn.seq_capped", asked=asked, model=spec.name, positions=spec.max_positions, seq=spec.max_positions)
