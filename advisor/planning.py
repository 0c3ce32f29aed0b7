"""Turn a chosen pipeline, adaptation and set-up into a concrete Plan: stages, datasets, hyper-parameters.

`advise` decides *what* to do; this module writes it down the same way every time, so flags
(`advisor generate --model ... --method-kind dpo`) and the wizard give identical plans.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import cast

from estimators.effective import effective_setup
from estimators.gpus import find_gpu
from estimators.kind_models import REWARD_VALUE_KINDS, trained_model
from estimators.model import SPEC_FIELDS, ModelSpec
from estimators.setup import Setup
from estimators.tables import read_table

from .errors import AdvisorError
from .plan import Adaptation, DataFormat, Hardware, Hyper, ModelRef, Plan, Stage
from .rewards import REWARD_KINDS

# pipeline -> the stages it trains, in order: (stage name, training kind, data format, starts from, reward from)
PIPELINES = {
    "sft": (("sft", "sft", "instruction", "", ""),),
    "dpo": (("dpo", "dpo", "preference", "", ""),),
    "reward": (("reward", "reward", "preference", "", ""),),
    # §3: comparison data -> reward model -> PPO on the SFT model
    "rlhf": (("sft", "sft", "instruction", "", ""), ("reward", "reward", "preference", "sft", ""), ("ppo", "ppo", "prompt", "sft", "reward")),
    "grpo": (("grpo", "grpo", "prompt", "", ""),),
    "sft+dpo": (("sft", "sft", "instruction", "", ""), ("dpo", "dpo", "preference", "sft", "")),
}
METHOD_KINDS = tuple(PIPELINES)


def hyper_rule(train: str, adaptation: str) -> str:
    """The rule id (rules/hyperparams.toml) of the defaults default_hyper uses."""
    return hyper_defaults()[(train, adaptation)]["id"]


@cache
def hyper_defaults() -> dict[tuple[str, str], dict]:
    rows = read_table("hyperparams.toml")["default"]
    return {(row["train"], row["adaptation"]): row for row in rows}


def default_hyper(train: str, adaptation: str) -> Hyper:
    row = hyper_defaults()[(train, adaptation)]
    return Hyper(learning_rate=row["learning_rate"], epochs=row["epochs"], beta=row.get("beta", 0.1))


def model_spec(text: str) -> tuple[ModelSpec, ModelRef]:
    """The spec the memory model prices and the reference the plan records, for one model text."""
    from estimators.catalog import resolve_model  # here, as before: the catalog is not needed to import planning
    from estimators.params import count_params

    resolved = resolve_model(text)
    spec = resolved.spec
    if spec.encoder:  # the plans and scripts train causal LMs (SFT, DPO, RLHF); an encoder is a classifier
        from estimators.errors import EstimateError

        raise EstimateError(
            f"{spec.name} is an encoder ({spec.model_type}): plans and generated scripts train causal language models; "
            f"price its classification fine-tuning with `advisor estimate --model {resolved.key}`"
        )
    ref = ModelRef(
        key=resolved.key,
        name=spec.name,
        hf_id=spec.hf_id or text,
        resolved_from=resolved.how,
        params_total=count_params(spec).total,
        spec=spec_data(spec),
    )
    return spec, ref


def spec_data(spec: ModelSpec) -> dict:
    """`spec` as plan data (TOML): every ModelSpec field, and of `extra` the parameter census a model family without
    a table was priced on (the user's whole config.json is not kept: the fields are what the estimate reads)."""
    data = {name: getattr(spec, name) for name in sorted(SPEC_FIELDS - {"extra"})}
    census = spec.extra.get("census") if isinstance(spec.extra, dict) else None
    return data | ({"census": _toml_safe(census)} if census else {})


def plan_spec(plan: Plan) -> ModelSpec:
    """The ModelSpec `plan` was priced on: from the plan itself, or (a plan saved before it kept one) resolved again."""
    return ref_spec(plan.model, "model")


def ref_spec(ref: ModelRef, where: str) -> ModelSpec:
    """The ModelSpec a plan's ModelRef keeps (`where` names it in errors), or resolved again from its key."""
    data = dict(ref.spec)
    if not data:
        return model_spec(ref.key)[0]
    census = data.pop("census", None)
    unknown = sorted(set(data) - SPEC_FIELDS)
    if unknown:
        raise AdvisorError(f"plan: {where}.spec has unknown field(s) {', '.join(unknown)}; valid: {', '.join(sorted(SPEC_FIELDS - {'extra'}))}")
    try:
        return ModelSpec(**data, extra={"census": census} if census else {})
    except TypeError as exc:
        raise AdvisorError(f"plan: {where}.spec: {exc}") from None


def stage_models(plan: Plan, stage: Stage) -> tuple[ModelSpec, ModelSpec | None]:
    """What a stage is priced with, as `estimate(policy, stage.setup, reward_model)` takes it: the plan's model and the
    stage's smaller reward/value model (None: the policy's; only reward and PPO stages have one)."""
    rv = stage.reward_value_model if stage.setup.train in REWARD_VALUE_KINDS else None
    return plan_spec(plan), (ref_spec(rv, f"stage '{stage.name}'.reward_value_model") if rv else None)


def stages_as_run(plan: Plan) -> list[str]:
    """Make every stage's set-up the one that runs (a hand-edited or older plan file may ask for what the stack
    does not do, e.g. QLoRA's fp32 upcast under FSDP); what changed, in words."""
    from estimators.effective import adjustments

    notes = []
    for stage in plan.stages:
        spec, reward = stage_models(plan, stage)
        runs = effective_setup(trained_model(stage.setup.train, spec, reward), stage.setup)
        notes += [f"stage '{stage.name}': {note}" for note in adjustments(stage.setup, runs)]
        stage.setup = runs
    return notes


def rewarded_stages(plan: Plan) -> list[Stage]:
    """The GRPO stages that take their reward from the user (no stage of the plan trains a reward model for them)."""
    return [s for s in plan.stages if s.setup.train == "grpo" and not s.reward_from]


def assign_reward(plan: Plan, chosen: Mapping[str, str]) -> list[str]:
    """Give the plan's GRPO stages the reward in `chosen` (advisor/rewards.py reward_parts); returns the names of
    the stages left on the script's placeholder reward (the callers say so, loudly)."""
    grpo = rewarded_stages(plan)
    if chosen and not grpo:
        raise AdvisorError(f"the {plan.pipeline} run has no GRPO stage to reward (its stages get their rewards from the plan)")
    if chosen:
        for stage in grpo:
            for key in REWARD_KINDS:
                setattr(stage, key, chosen.get(key, ""))
    return [s.name for s in grpo if not (s.reward_check or s.reward_fn or s.reward_model)]


def _toml_safe(value):
    """`value` without None (TOML has no null): dropped from tables, kept out of arrays."""
    if isinstance(value, dict):
        return {str(k): _toml_safe(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_toml_safe(v) for v in value if v is not None]
    return value


def hardware(gpu: str, count: int = 1, nodes: int = 1) -> Hardware:
    card = find_gpu(gpu)
    return Hardware(gpu=card.id, gpu_name=card.name, memory_gib=card.memory_gib, count=count, nodes=nodes, bf16=card.bf16)


def build_plan(
    model: str,
    setup: Setup,
    *,
    pipeline: str = "sft",
    gpu: str = "rtx4090",
    dataset: str | None = None,
    output_dir: str = "outputs",  # inside the run folder: RUN_DIR/outputs/<stage>, as `advisor generate` writes it
    stage_setups: Mapping[str, Setup] | None = None,
    data_formats: Mapping[str, str] | None = None,
    resolved: tuple[ModelSpec, ModelRef] | None = None,
    reward_value: tuple[ModelSpec, ModelRef] | None = None,
) -> Plan:
    """A Plan whose stages all use `setup`'s adaptation and knobs, the training kind set per stage.

    `stage_setups` (stage name -> Setup) gives a stage its own knobs (the advisor sizes each stage's batch for
    its own memory); their adaptation must be `setup`'s (the Plan refuses another). `data_formats` overrides a stage's data format
    (e.g. "text" for raw domain documents). `resolved`: `model_spec(model)` when the caller has it already.
    `reward_value`: RLHF's smaller reward/value model, recorded on the reward and PPO stages; the reward stage then
    trains it from its own weights (not from the policy's SFT output)."""
    if pipeline not in PIPELINES:
        raise AdvisorError(f"unknown pipeline '{pipeline}' (--method-kind); valid: {', '.join(METHOD_KINDS)}")
    if dataset and len(PIPELINES[pipeline]) > 1:  # its stages take different data: never drop it silently
        raise AdvisorError(f"one dataset for the {len(PIPELINES[pipeline])} stages of '{pipeline}': set each stage's dataset instead")
    spec, ref = resolved or model_spec(model)  # resolved once: the stages are made what runs on it, the plan keeps its numbers
    stages = []
    stage_setups, data_formats = stage_setups or {}, data_formats or {}
    unknown = sorted(set(stage_setups) - {row[0] for row in PIPELINES[pipeline]})
    if unknown:
        raise AdvisorError(f"pipeline '{pipeline}' has no stage(s) {', '.join(unknown)}")
    for name, train, data_format, base_from, reward_from in PIPELINES[pipeline]:
        rv = reward_value if reward_value and train in REWARD_VALUE_KINDS else None
        if rv and train == "reward":
            base_from = ""  # the smaller model is trained from its own pretrained weights
        # as the stack runs it (estimators/effective.py): stored so the script and the README read what was priced
        trained = trained_model(train, spec, rv[0] if rv else None)
        stage_setup = effective_setup(trained, stage_setups.get(name, setup).with_(train=train))
        stages.append(
            Stage(
                name=name,
                setup=stage_setup,
                hyper=default_hyper(train, setup.adaptation),
                dataset=dataset or "bundled",
                data_format=cast(DataFormat, data_formats.get(name, data_format)),  # PIPELINES' and the data check's formats
                output_dir=f"{output_dir}/{name}",
                base_from=base_from,
                reward_from=reward_from,
                reward_value_model=rv[1] if rv else None,
            )
        )
    return Plan(
        pipeline=pipeline,
        adaptation=cast(Adaptation, setup.adaptation),  # Setup checked it against ADAPTATIONS
        model=ref,
        hardware=hardware(gpu, setup.gpus, setup.nodes),
        stages=stages,
    )
