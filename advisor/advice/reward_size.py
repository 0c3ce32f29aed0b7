"""RLHF with a smaller reward/value model (issue 16): when a reward and value model the size of the policy do not fit,
the catalog's smaller models of the policy's family, largest first, the InstructGPT practice (Ouyang et al. 2022,
arXiv:2203.02155: a 6B reward model, and a value model started from it, for the 175B policy). trl's PPO feeds the
policy's token ids to both models (trl 1.12 experimental/utils.py get_reward, PolicyAndValueWrapper), so only a model
with the policy's `model_type` and vocabulary can score them."""

from __future__ import annotations

import os

from estimators.model import ModelSpec
from estimators.params import count_params

from ..plan import ModelRef
from ..planning import model_spec
from .context import Context
from .fitting import Search, search


def _shared_prefix(a: ModelSpec, b: ModelSpec) -> int:
    return len(os.path.commonprefix([(a.hf_id or a.name).lower(), (b.hf_id or b.name).lower()]))


def family_reward_models(spec: ModelSpec) -> list[str]:
    """Catalog keys of the models that can be the policy's reward/value model: the same model_type and vocabulary,
    fewer parameters, largest first. Of catalog rows with the same parameter count (Llama 3 8B and Llama 3.1 8B) one
    is kept, the one whose hub id shares the longest prefix with the policy's (its release)."""
    from estimators.catalog import catalog

    own = count_params(spec).total
    specs = catalog()
    by_size: dict[int, str] = {}
    for key, other in specs.items():
        if other.model_type != spec.model_type or other.vocab_size != spec.vocab_size:
            continue
        n = count_params(other).total
        if n >= own:
            continue
        if n not in by_size or _shared_prefix(other, spec) > _shared_prefix(specs[by_size[n]], spec):
            by_size[n] = key
    return [by_size[n] for n in sorted(by_size, reverse=True)]


def smaller_reward_rlhf(ctx: Context, order: tuple[str, ...], same_size: Search) -> tuple[Search, ModelSpec, ModelRef] | None:
    """RLHF with the largest same-family reward/value model whose three stages fit at the asked sequence length, as
    advise sizes them (advisor/advice/fitting.py search), or None when none does. `same_size`: the search with the
    policy's own; when its SFT stage fits with no adaptation, no reward model helps and none is tried."""
    if not any(s.fits for cand in same_size.tried.values() for s in cand.stages if s.train == "sft"):
        return None
    for key in family_reward_models(ctx.spec):
        rm, ref = model_spec(key)
        found = search(ctx.spec, "rlhf", order, ctx.hw, ctx.seq_len, reward_model=rm)
        if found.chosen.fits and not found.shortened:
            return found, rm, ref
    return None
