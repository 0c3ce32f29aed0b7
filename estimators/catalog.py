"""Which model the user means: the offline catalog (rules/models.toml), size shorthands, local config.json files
and the local Hugging Face cache, turned into a `ModelSpec`. Standard library only; never touches the network.

    resolve_model("7b")                      -> Llama 2 7B from the catalog
    resolve_model("Qwen/Qwen2.5-7B-Instruct") -> catalog (alias of qwen2.5-7b)
    resolve_model("./my-model")              -> that directory's config.json
    resolve_model("org/name")                -> config.json of a snapshot in the local Hugging Face cache

The family tables are in estimators/families.py, the config.json mapping in estimators/hf_config.py (files:
estimators/config_json.py), the hub cache lookup in estimators/hub_cache.py.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path

from .config_checks import check_model_text
from .errors import EstimateError
from .families import FAMILIES, flag_defaults
from .model import ModelSpec
from .toml_cache import load_toml

CATALOG_PATH = Path(__file__).resolve().parent.parent / "rules" / "models.toml"
_ROW_ONLY = {"key", "aliases", "note"}  # catalog row keys that are not ModelSpec fields (note: provenance remarks)
_SPEC_FIELDS = {f.name for f in fields(ModelSpec)}


# ------------------------------------------------------------------------------------------------ catalog
@lru_cache(maxsize=1)
def _load() -> tuple[dict[str, ModelSpec], dict[str, str], dict[str, str]]:
    try:
        data = load_toml(CATALOG_PATH)  # parsed once, then read back from the user's cache (estimators/toml_cache.py)
    except (OSError, ValueError) as e:  # ValueError: tomllib.TOMLDecodeError, or a file that is not UTF-8
        raise EstimateError(f"cannot read the model catalog {CATALOG_PATH}: {e}") from None
    specs: dict[str, ModelSpec] = {}
    aliases: dict[str, str] = {}
    for row in data.get("models", []):
        key = row.get("key")
        if not key:
            raise EstimateError(f"{CATALOG_PATH}: a [[models]] row has no key")
        unknown = set(row) - _SPEC_FIELDS - _ROW_ONLY - {"hf"}
        if unknown:
            raise EstimateError(f"{CATALOG_PATH}: row {key}: unknown field(s) {', '.join(sorted(unknown))}")
        fam = FAMILIES.get(row.get("model_type", ""))
        if fam is None:
            raise EstimateError(f"{CATALOG_PATH}: row {key}: unsupported model_type {row.get('model_type')!r}")
        values = {**flag_defaults(fam), **fam.switches, **{k: v for k, v in row.items() if k in _SPEC_FIELDS}}
        if "hf" in row:
            values["extra"] = {"hf": dict(row["hf"])}
        try:
            spec = ModelSpec(**values)
        except TypeError as e:
            raise EstimateError(f"{CATALOG_PATH}: row {key}: {e}") from None
        if spec.head_dim and spec.head_dim * spec.num_heads == spec.hidden_size:
            spec = replace(spec, head_dim=0)
        specs[key] = spec
        for a in row.get("aliases", []):
            aliases[a] = key
    shorthands = {str(k).lower(): v for k, v in data.get("shorthands", {}).items()}
    bad = [f"{k} -> {v}" for k, v in shorthands.items() if v not in specs]
    if bad:
        raise EstimateError(f"{CATALOG_PATH}: shorthand(s) name unknown keys: {', '.join(bad)}")
    return specs, shorthands, aliases


def catalog() -> dict[str, ModelSpec]:
    """Catalog key -> ModelSpec, in file order (a fresh dict; the specs are shared and frozen)."""
    return dict(_load()[0])


def shorthands() -> dict[str, str]:
    """Size shorthand ("7b") -> catalog key."""
    return dict(_load()[1])


def aliases() -> dict[str, str]:
    """Other hub ids with a catalog row's architecture (instruct variants, old names) -> catalog key."""
    return dict(_load()[2])


# ------------------------------------------------------------------------------------------------ resolving
@dataclass(frozen=True)
class Resolved:
    spec: ModelSpec
    key: str  # catalog key, or what the user typed for a path / cached hub id
    how: str  # human phrase: where the numbers came from


def _describe(spec: ModelSpec) -> str:
    return f"{spec.name} ({spec.hf_id})" if spec.hf_id else spec.name


def _suggest(text: str) -> list[str]:
    import difflib  # only for an unknown name

    specs, shorts, alias = _load()
    names = {k.lower(): k for k in specs}
    names.update({s.hf_id.lower(): s.hf_id for s in specs.values() if s.hf_id})
    names.update({a.lower(): a for a in alias})
    names.update({k: k for k in shorts})
    t = text.strip().lower()
    hits = difflib.get_close_matches(t, list(names), n=3, cutoff=0.5)
    if not hits and "/" in t:  # "org/some-name": compare the name part with the keys
        hits = difflib.get_close_matches(t.rsplit("/", 1)[1], list(names), n=3, cutoff=0.5)
    return [names[h] for h in hits]


def _how(spec: ModelSpec, where: str) -> str:
    from .config_json import GENERIC_HOW
    from .hf_config import is_generic

    return f"{where}; {GENERIC_HOW.format(spec.model_type)}" if is_generic(spec) else where


TINY = "tiny"  # a 2-layer random Llama built locally by the generated script: the offline default
# What the memory model prices for TINY: a 2-layer Llama of hidden size 64 (its memory is negligible either way).
TINY_SPEC = ModelSpec(
    name="tiny random Llama (2 layers, built locally)",
    model_type="llama",
    hidden_size=64,
    intermediate_size=256,
    num_layers=2,
    num_heads=4,
    num_kv_heads=4,
    vocab_size=1024,
    max_positions=2048,
    source="built by the script",
)


def resolve_model(text: str) -> Resolved:
    """Catalog key -> catalog hub id (or alias) -> shorthand -> local directory / config.json -> local HF cache."""
    raw = (text or "").strip()
    if not raw:
        raise EstimateError("no model given (a catalog key, size like 7b, hub id or path; see `advisor models`)")
    check_model_text(raw)  # control characters, over-long names: one line, not os.stat's OSError
    low = raw.lower()
    if low == TINY:  # every command takes the offline smoke-test model (`advisor estimate --model tiny` too)
        return Resolved(TINY_SPEC, TINY, "built by the script")
    specs, shorts, alias = _load()
    for key, spec in specs.items():
        if key.lower() == low:
            return Resolved(spec, key, "catalog")
    for key, spec in specs.items():
        if spec.hf_id.lower() == low:
            return Resolved(spec, key, "catalog")
    for a, key in alias.items():
        if a.lower() == low:  # same numbers, but the hub id the user named (the script must load that one)
            spec = replace(specs[key], hf_id=a, source=f"https://huggingface.co/{a}/blob/main/config.json")
            return Resolved(spec, key, f"catalog: {a} has the architecture of {_describe(specs[key])}")
    if low in shorts:
        key = shorts[low]
        return Resolved(specs[key], key, f"shorthand {raw} → {_describe(specs[key])}")
    # a path or a hub id: the config.json readers, imported here so that a catalog key never loads them
    from .config_json import read_config_json
    from .hub_cache import cached_config, looks_like_repo_id

    path = Path(raw).expanduser()
    if path.is_dir():
        cfg = path / "config.json"
        if not cfg.is_file():
            raise EstimateError(f"directory {path} has no config.json")
        spec = read_config_json(cfg, path.resolve().name)
        return Resolved(spec, raw, _how(spec, f"config.json at {cfg}"))
    if path.is_file():
        spec = read_config_json(path)
        return Resolved(spec, raw, _how(spec, f"config.json at {path}"))
    if looks_like_repo_id(raw):
        cached = cached_config(raw)
        if cached is not None:
            spec = replace(read_config_json(cached, raw), hf_id=raw)
            return Resolved(spec, raw, _how(spec, f"local Hugging Face cache ({cached})"))
    hits = _suggest(raw)
    if hits:
        raise EstimateError(f"unknown model '{raw}'; did you mean: {', '.join(hits)}? (see `advisor models`)")
    raise EstimateError(
        f"unknown model '{raw}': not in the catalog, not a local config.json, not in the local Hugging Face cache (see `advisor models`)"
    )
