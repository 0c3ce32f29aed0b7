"""Reading a config.json file into a ModelSpec: the family tables when its model_type has one, else a meta-device
build by transformers (when the train extra is installed)."""

from __future__ import annotations

from pathlib import Path

from .config_checks import parse_config_text
from .errors import EstimateError
from .hf_config import UnknownFamily, spec_from_hf_config
from .model import ModelSpec


def read_config_json(path: Path | str, name: str = "") -> ModelSpec:
    """Read and map a config.json file; every failure is one EstimateError line naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise EstimateError(f"cannot read {path}: {e.strerror or e}") from None
    config = parse_config_text(text, path)  # one-line errors, also for 5000-digit numbers and deep nesting
    if not name:
        name = path.parent.name if path.name == "config.json" else path.stem
    try:
        return spec_from_hf_config(config, name, origin=str(path))
    except UnknownFamily as e:
        return generic_spec(config, name, str(path), e)


GENERIC_HOW = "counts and linear shapes from a meta-device build by transformers (no table for model_type '{}')"


def generic_spec(config: dict, name: str, where: str, refused: UnknownFamily) -> ModelSpec:
    """A family with no table: counts and per-layer shapes from a meta-device build (advisor.measure.census),
    when torch and transformers (the train extra) are installed; otherwise the table's refusal, with the fix.
    Imported here, lazily, so that known families never load torch."""
    import importlib.util

    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
        raise EstimateError(
            f"{refused}; with the train extra installed (pip install 'advisor[train]') it is priced from a meta-device build"
        ) from None
    from advisor.measure.census import census_spec

    return census_spec(config, name, where)
