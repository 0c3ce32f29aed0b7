"""PPO's phases (trl 1.12's trl.experimental.ppo): the one kind with four models (policy, reference, reward, value),
a stored rollout and a second backward for the value model, so it has a module of its own beside estimators/kinds.py,
which lists what the trainer keeps (the TRL sources) and prices every kind per GPU."""

from __future__ import annotations

from . import layouts
from . import terms as t
from .kind_models import frozen_setup, reference_mode, seqcls_spec, value_setup
from .kind_phases import KindPlan, forward_name, master_params, reference_terms, sft_phases, steady_terms, term
from .kind_rollout import generation_working_set, kv_cache, ppo_scoring, prompt_len, rollout_logits
from .model import ModelSpec
from .params import count_params
from .setup import Setup


def plan_ppo(m: ModelSpec, setup: Setup, reward: ModelSpec | None = None) -> KindPlan:
    """PPO (trl 1.12): rollout generation micro_batch sequences at a time with stored fp32 scores, no_grad scoring
    by the reference, value and reward models, then PPO epochs on micro-batches of prompt + response tokens where
    the policy and the fully trained value model run forward and backward together. trl 1.12 computes the policy's
    logits in full (`forward()` then log-softmax): priced with the HF loss whatever Setup.loss says.
    `reward`: the reward and value models' architecture when it is not the policy's (kind_models.reward_value_spec);
    the policy, its reference, the rollout and its scores stay the policy's."""
    setup = setup.with_(loss="full")
    resp, seq = setup.response_len, prompt_len(setup) + setup.response_len
    local = setup.micro_batch * setup.grad_accum
    chunk = setup.micro_batch  # local_rollout_forward_batch_size as the generated script sets it
    base = sft_phases(m, setup, seq_len=seq)
    r = reward or m
    at = f"; priced at {r.name}" if r != m else ""  # the term notes name a reward/value model that is not the policy's
    rm = seqcls_spec(r)
    sv = value_setup(setup).with_(seq_len=seq)
    sr = frozen_setup(setup)
    mode = reference_mode(setup)
    value_states = t.optimizer_states(rm, sv)
    paged = setup.optimizer == "paged_adamw8bit"
    extra = reference_terms(m, setup, mode) + [
        term(
            "reward model",
            "parameters",
            t.base_weights(rm, sr) + r.hidden_size * sr.compute_bytes,
            f"frozen seq-cls model, compute dtype (4-bit linears for QLoRA){at}",
        ),
        term(
            "value model",
            "parameters",
            t.base_weights(rm, sv) + r.hidden_size * t.weight_bytes_per_param(sv),
            f"seq-cls model trained in full, compute dtype (trl 1.12 never adapts it){at}",
        ),
    ]
    if not paged:
        extra.append(term("value model optimizer states", "optimizer", value_states, f"{setup.optimizer}, all value-model parameters{at}"))
    logits = term(
        "rollout logits",
        "activations",
        rollout_logits(m, local, resp),
        f"fp32 scores of {local} rollouts x {resp} tokens, kept through the PPO epochs",
    )
    value_acts = term("value model activations", "activations", t.stack_activations(rm, sv), f"no gradient checkpointing on the value model{at}")
    value_grads = term("value model gradients", "gradients", t.gradients(rm, sv), f"one per value-model parameter{at}")
    fwd = forward_name(base.phases)
    steady = steady_terms(base.phases[fwd]) + extra
    phases: dict[str, list[t.TermValue]] = {
        "generation": steady
        + [
            term(
                "KV cache",
                "activations",
                kv_cache(m, setup, chunk, seq),
                f"{chunk} rollouts x {seq} tokens (local_rollout_forward_batch_size = micro-batch)",
            ),
            term(
                "generation working set",
                "temporaries",
                generation_working_set(m, setup, chunk, prompt_len(setup), resp),
                "prefill layer / sampling logits",
            ),
            logits,
            term("rollout logits stacking", "temporaries", rollout_logits(m, chunk, resp), "torch.stack of the chunk's per-step scores"),
        ],
        "generation (pad logits)": steady
        + [logits, term("rollout logits padded copy", "temporaries", logits.bytes, "pad() of the chunk list into one tensor")],
        "rollout scoring": steady
        + [
            logits,
            term(
                "reference and value forwards",
                "temporaries",
                ppo_scoring(m, setup, chunk, seq),
                "no_grad full logits + all hidden states of one chunk",
            ),
        ],
    }
    policy_grads = [v for vals in base.phases.values() for v in vals if v.category == "gradients"][:1]
    last_backward = ([n for n in base.phases if "backward" in n] or [fwd])[-1]
    for name, vals in base.phases.items():
        add = [logits] + extra
        if "backward" in name or name == fwd:
            add.append(value_acts)
        if name.startswith("optimizer"):
            add.append(value_grads)
        phases[name] = list(vals) + add
        if name == last_backward:
            bottom = t.layer_saved(rm, sv) + t.layer_backward_scratch(rm, sv)
            phases["backward (value model)"] = (
                steady
                + policy_grads
                + [logits, value_grads, term("value layer activations", "activations", bottom, f"bottom value layer and its backward scratch{at}")]
            )
    value_params = count_params(rm).total + r.hidden_size
    trainable = base.trainable + value_params
    master = master_params(setup, base.trainable) + (value_params if t.weight_bytes_per_param(sv) == 2 else 0)
    sized = "the size of the policy" if r == m else f"{r.name}, not the policy's {m.name} (same vocabulary)"
    warnings = list(base.warnings) + [
        f"PPO is priced on trl 1.12 (trl.experimental.ppo; removed in trl 1.16): reward and value models {sized}, the value model fully trained"
    ]
    return KindPlan(
        m,
        base.params,
        trainable,
        phases,
        base.paged_bytes + (value_states if paged else 0),
        master,
        frozen_sharded=setup.parallel not in layouts.FSDP,
        warnings=warnings,
    )
