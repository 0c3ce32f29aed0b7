"""GPU-memory model for fine-tuning language models. Pure Python: importing it never loads torch.

from estimators import Setup, estimate, resolve_model
est = estimate(resolve_model("7b").spec, Setup(adaptation="qlora"))
est.peak_allocated, est.peak_phase, est.categories()
"""

from importlib import import_module

from .errors import EstimateError

__all__ = ["Estimate", "EstimateError", "ModelSpec", "ParamCounts", "Setup", "count_params", "estimate", "resolve_model"]

# The public names, imported on first use: `import estimators.gpus` (the wizard's check of a typed GPU name,
# before its first paint) then costs the GPU table, not the whole estimator (about 0.1 s of imports).
_LAZY = {"Estimate": "result", "estimate": "pricing", "ModelSpec": "model", "ParamCounts": "params", "count_params": "params", "Setup": "setup"}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'estimators' has no attribute {name!r}")
    return getattr(import_module(f".{_LAZY[name]}", __name__), name)


def resolve_model(text: str):
    """Resolve a catalog key, shorthand, local path or cached hub id (see estimators.catalog)."""
    from .catalog import resolve_model as _resolve

    return _resolve(text)
