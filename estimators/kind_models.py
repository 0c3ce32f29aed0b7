"""The models and set-ups the training kinds load besides the policy (estimators/kinds.py builds the phases).

Reward and value models are AutoModelForSequenceClassification(num_labels=1): the decoder without its lm_head and a
`score` Linear(h, 1). The reference model is a frozen copy of the policy (full fine-tuning) or the LoRA base with the
adapter disabled; `reference_mode` says which a set-up gets and `check` refuses the choices the trainers cannot honour.
The TRL sources these were read from are listed in estimators/kinds.py.
"""

from __future__ import annotations

from dataclasses import replace

from . import terms as t
from .errors import EstimateError
from .model import ModelSpec
from .params import ParamCounts, count_params
from .setup import Setup
from .tables import read_table


def advisor_grpo_beta(adaptation: str) -> float:
    """The KL coefficient the generated GRPO script passes (rules/hyperparams.toml hp.grpo.<adaptation>): above
    TRL's own default 0.0, so "--ref-model auto" has a reference; --ref-model none runs beta 0.0."""
    return next(row["beta"] for row in read_table("hyperparams.toml")["default"] if row["train"] == "grpo" and row["adaptation"] == adaptation)


# Sequences each example puts through the trained model in one micro-step: the preference kinds train on the chosen
# and the rejected answer together (TRL concatenates them into one batch).
TRAINED_SEQUENCES = {"sft": 1, "reward": 2, "dpo": 2}
REWARD_VALUE_KINDS = ("reward", "ppo")  # the kinds with a reward or value model of their own (RLHF steps 2 and 3)


def trained_model(train: str, policy, reward):
    """The model a run of kind `train` trains: a reward stage given a separate (smaller) reward/value model trains
    that one, from its own weights; every other run trains the policy. Works on any pair of one kind (ModelSpec,
    the plan's ModelRef, a catalog Resolved); `reward` None means the policy's architecture."""
    return reward if reward is not None and train == "reward" else policy


def reward_value_spec(policy: ModelSpec, setup: Setup, reward: ModelSpec | None) -> ModelSpec | None:
    """The architecture the reward and value models are priced at when it is not the policy's (None: the policy's).
    InstructGPT trained a 6B reward model for its 175B policy (Ouyang et al. 2022, §3.5); the value model starts
    from it. Refused, one line: a kind with no reward or value model, and a vocabulary other than the policy's
    (trl's PPO feeds the policy's token ids to the reward and value models unchanged: one tokenizer, one family)."""
    if reward is None:
        return None
    if setup.train not in REWARD_VALUE_KINDS:
        raise EstimateError(f"--reward-value-model applies to --train reward or ppo, not {setup.train}")
    if reward.vocab_size != policy.vocab_size:
        raise EstimateError(
            f"reward/value model {reward.name} has {reward.vocab_size:,} tokens in its vocabulary, the policy {policy.name} "
            f"{policy.vocab_size:,}: PPO scores the policy's token ids, so pick a model of the policy's family with its tokenizer"
        )
    return reward


def seqcls_spec(m: ModelSpec) -> ModelSpec:
    """A reward / value model: the decoder with its lm_head removed (count_params prices no head when the
    embeddings are tied); the `score` Linear(h, 1) is priced by `score_head`."""
    return m.with_(tie_embeddings=True)


def seqcls_params(m: ModelSpec) -> ParamCounts:
    """Parameter counts of AutoModelForSequenceClassification(num_labels=1): no lm_head, `score` = h weights
    (no bias). Reported in the head slot so total = embedding + head + linears + norms still holds."""
    pc = count_params(seqcls_spec(m))
    h = m.hidden_size
    return replace(pc, total=pc.total + h, lm_head=h, active=pc.active + h)


def score_head(m: ModelSpec, setup: Setup) -> int:
    """`score` Linear(h, 1): weight, gradient and two AdamW states in the weight dtype; LoRA's modules_to_save
    keeps the original and a trained copy (5 x h). The scalar outputs (B x S x 1) are included as h-sized slack."""
    return m.hidden_size * t.weight_bytes_per_param(setup) * (4 if setup.adaptation == "full" else 5)


def headless_gradients(phase: str, values: list[t.TermValue], m: ModelSpec, setup: Setup) -> list[t.TermValue]:
    """Full fine-tuning of the seq-cls model: seqcls_spec prices it as a tied-embedding model (no lm_head
    parameters), whose SFT phases have the shared V x h gradient from the head's backward at the top of backward.
    With no LM head, the embedding's gradient is the last one backward produces (`embedding_dense_backward`, a
    fresh V x h tensor the AccumulateGrad node keeps as .grad, nothing to add it to): it is left out of the
    backward phases before the end, and the end has no tied-gradient sum. Traced: Qwen2.5 0.5B (152k x 896 tied
    table), reward full b4x2048 with checkpointing, 10 % high without this."""
    if setup.adaptation != "full":
        return values
    emb = m.vocab_size * m.hidden_size * t.trainable_bytes_per_param(setup)
    if phase == "backward (end)":
        return [v for v in values if v.name != "embedding gradient"]
    if phase in ("backward (top layer)", "backward (layers)"):
        return [
            t.TermValue(v.name, v.category, max(0, v.bytes - emb), f"{v.note}; the embedding's comes last (no LM head)")
            if v.category == "gradients"
            else v
            for v in values
        ]
    return values


def reference_weights(m: ModelSpec, setup: Setup) -> int:
    """A frozen reference copy, stored like the policy (TRL creates it with the policy's dtype and quantization)."""
    return t.base_weights(m, setup)


def no_dropout(setup: Setup) -> Setup:
    """RewardConfig and DPOConfig default to disable_dropout=True (the generated scripts keep it): the trainers
    set every nn.Dropout's p to 0, LoRA's lora_dropout included, so no dropout masks or dropped copies of the
    LoRA inputs are saved (torch's dropout returns its input when p == 0). Traced: a DPO LoRA step without
    gradient checkpointing priced with the dropout copies came out 13 % high."""
    return setup.with_(lora_dropout=0.0) if setup.lora_dropout else setup


def _compute_precision(setup: Setup) -> str:
    return "fp32" if setup.precision == "fp32" else ("fp16" if setup.precision.startswith("fp16") else "bf16")


def frozen_setup(setup: Setup) -> Setup:
    """Set-up of the PPO reward model as the generated script loads it (`load_reward_model`): the compute dtype,
    4-bit linears for QLoRA plans, without peft's fp32 upcast of the other weights."""
    if setup.adaptation == "qlora":
        return setup.with_(kbit_upcast=False)
    return setup.without_adapter(precision=_compute_precision(setup))


def value_setup(setup: Setup) -> Setup:
    """Set-up of the PPO value model: fully trained (trl 1.12 never adapts it) in the compute dtype, never 4-bit
    (the generated script); no gradient checkpointing: PolicyAndValueWrapper.gradient_checkpointing_enable reaches
    the policy only, and trl 1.12's PPOTrainer.train() (which replaces Trainer.train) never calls it, so the
    policy is checkpointed only when the script enables it (priced from --grad-ckpt) and the value model never."""
    return setup.without_adapter(precision=_compute_precision(setup), grad_ckpt=False)


def reference_mode(setup: Setup) -> str:
    """'copy', 'adapter' (LoRA base with the adapter disabled), 'precomputed' or 'none' for this kind."""
    k, r = setup.train, setup.ref_model
    if k == "grpo" and r == "none":
        return "none"  # beta = 0.0 (TRL's GRPOConfig default): GRPOTrainer sets ref_model = None
    if r == "precomputed":
        return "precomputed"
    return "copy" if setup.adaptation == "full" else "adapter"


def check(setup: Setup) -> None:
    """Reference-model choices the trainers cannot honour, one line each."""
    k, r = setup.train, setup.ref_model
    if k in ("sft", "reward") and r != "auto":
        raise EstimateError(f"--ref-model applies to --train dpo, ppo or grpo, not {k}")
    if r == "precomputed" and k != "dpo":
        raise EstimateError("--ref-model precomputed exists only for DPO (precompute_ref_log_probs); use auto or copy")
    if r == "none" and k in ("dpo", "ppo"):
        raise EstimateError(f"{k.upper()} needs reference log-probs: use --ref-model auto" + (" or precomputed" if k == "dpo" else ""))
