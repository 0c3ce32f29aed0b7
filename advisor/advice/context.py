"""Context: one advice run's answers with the model spec, the GPUs and the sequence length they name, built once
by build_context and read by the decision, the sizing and the time model."""

from __future__ import annotations

from dataclasses import dataclass

from estimators.errors import EstimateError
from estimators.gpus import find_gpu
from estimators.margin import parse_margin
from estimators.model import ModelSpec

from ..errors import AdvisorError
from ..planning import model_spec
from ..questions import Answers
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


def build_context(answers: Answers, margin: str | None = None) -> tuple[Context, object]:
    try:
        spec, ref = model_spec(answers.model)
        gpu = find_gpu(answers.gpu)
        keep = parse_margin(margin, display=gpu.consumer) if margin not in (None, "", "auto") else None
    except EstimateError as exc:
        raise AdvisorError(str(exc)) from None
    seq = min(answers.seq_len, spec.max_positions)
    return Context(answers, spec, Hw(gpu, answers.gpu_count, keep), seq), ref
