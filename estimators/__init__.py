"""GPU-memory model for fine-tuning language models. Pure Python: importing it never loads torch.

    from estimators import Setup, estimate, resolve_model
    est = estimate(resolve_model("7b").spec, Setup(method="qlora"))
    est.peak_allocated, est.peak_phase, est.categories()
"""

from .errors import EstimateError
from .estimate import Estimate, estimate
from .model import ModelSpec
from .params import ParamCounts, count_params
from .setup import Setup

__all__ = ["Estimate", "EstimateError", "ModelSpec", "ParamCounts", "Setup", "count_params", "estimate", "resolve_model"]


def resolve_model(text: str):
    """Resolve a catalog key, shorthand, local path or cached hub id (see estimators.catalog)."""
    from .catalog import resolve_model as _resolve

    return _resolve(text)
