"""`--reward-value-model` (issue 16), one flag for `advisor estimate`, `fit` and `generate`: RLHF's reward and value
models priced (and, for generate, trained) at a smaller model of the policy's family, the InstructGPT practice.
Torch-free: it resolves like --model (estimators/catalog.py)."""

from __future__ import annotations

import argparse

HELP = (
    "price the reward and value models at this smaller model of the policy's family (same vocabulary; InstructGPT: "
    "a 6B reward model for a 175B policy), given like --model (default: the policy's)"
)


def add_reward_value_flag(p: argparse.ArgumentParser, kinds: str) -> None:
    """The flag, its help naming the `kinds` it applies to ("--train ppo / reward")."""
    p.add_argument("--reward-value-model", metavar="MODEL", help=f"{kinds}: {HELP}")


def resolve_reward_value(text: str | None):
    """--reward-value-model resolved like --model (a catalog Resolved), or None; a bad one names the flag."""
    if text is None:
        return None
    from estimators.catalog import resolve_model
    from estimators.errors import EstimateError

    try:
        return resolve_model(text)
    except EstimateError as exc:
        raise EstimateError(f"--reward-value-model: {exc}") from None


def reward_value_data(resolved, given: bool) -> dict:
    """Which reward/value model a PPO or reward estimate priced: the one given, or the policy's architecture."""
    from estimators.kind_models import seqcls_params

    spec = resolved.spec
    return {
        "name": spec.name,
        "key": resolved.key,
        "hf_id": spec.hf_id,
        "resolved_from": resolved.how if given else "the policy's architecture",
        "params_total": seqcls_params(spec).total,
        "vocab_size": spec.vocab_size,
        "separate": given,
    }


def plan_reward_value(text: str | None, method: str, policy: str):
    """`advisor generate`: (ModelSpec, ModelRef) of --reward-value-model for advisor/planning.py build_plan, or None.
    Refused, one line: a method kind without a reward model, and a vocabulary other than `policy`'s."""
    if text is None:
        return None
    from estimators.errors import EstimateError
    from estimators.kind_models import REWARD_VALUE_KINDS, reward_value_spec
    from estimators.setup import Setup

    from .errors import AdvisorError
    from .paths import absolute
    from .planning import PIPELINES, model_spec

    kinds = [m for m, stages in PIPELINES.items() if any(train in REWARD_VALUE_KINDS for _, train, *_ in stages)]
    if method not in kinds:
        raise AdvisorError(f"--reward-value-model: the {method} run has no reward or value model; it applies to --method-kind {' or '.join(kinds)}")
    try:
        spec, ref = model_spec(absolute(text))  # a local folder as the policy's is: written down absolute
    except EstimateError as exc:
        raise EstimateError(f"--reward-value-model: {exc}") from None
    reward_value_spec(model_spec(policy)[0], Setup(train="ppo"), spec)  # trl's PPO feeds the policy's token ids to it
    return spec, ref
