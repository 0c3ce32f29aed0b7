"""Training kinds beyond SFT (reward, DPO, PPO, GRPO) as phases of one step, then priced per GPU by parallel.py.

Each kind starts from the SFT phases that `estimate()` computes for the policy (so the policy's weights, LoRA,
optimizer, activations and logits follow the SFT physics of terms.py) on the sequences the kind really trains on,
and adds what the kind keeps besides: extra models, a reference forward, rollout generation with its KV cache.
Extra models are separate terms named "reference model", "reward model", "value model", and the cache "KV cache".

What the trainers keep, read from the installed sources (trl 1.16: trainer/{dpo,reward,grpo}_trainer.py,
grpo_config.py, kernels/chunked_logprob.py; trl 1.12.0: experimental/ppo/ppo_trainer.py, ppo_config.py):
- reward (RewardTrainer): `AutoModelForSequenceClassification(num_labels=1)`: no lm_head, a `score`
  Linear(h, 1) without bias; chosen and rejected are concatenated into one forward of 2 x micro_batch sequences;
  the output is one scalar per position (no vocabulary logits). LoRA uses task_type SEQ_CLS, whose
  modules_to_save trains a copy of `score`.
- dpo (DPOTrainer): policy forward on chosen + rejected concatenated (2 x micro_batch sequences), then the
  reference forward under no_grad while the policy's saved activations are alive. Full fine-tuning: a frozen
  copy created with the policy's dtype (`ref_model_init_kwargs.setdefault("dtype", self.model.dtype)`); LoRA:
  `ref_model=None`, the adapter is disabled for the reference forward (no second copy);
  `precompute_ref_log_probs=True`: no reference during training (it is freed after the pre-pass).
- grpo (GRPOTrainer): `beta` defaults to 0.0 and "If beta is 0.0, the reference model is not needed"
  (`self.ref_model = None`); with beta > 0 a copy for full fine-tuning, the adapter-disabled base for LoRA.
  Generation batch per GPU = per_device_train_batch_size x steps_per_generation (default: the gradient
  accumulation steps), generated in one `generate` call with a KV cache; the policy then trains on micro-batches.
- ppo (trl 1.12.0 `trl.experimental.ppo`, removed in 1.16, see STACK.md): policy (LoRA when a peft_config is
  given), reference (`create_reference_model` copy, or the adapter-disabled policy with peft), reward model
  (frozen, moved to the device) and value model (a separate AutoModelForSequenceClassification wrapped with the
  policy in `PolicyAndValueWrapper`: fully trained, never LoRA-adapted, gradient checkpointing only on the
  policy). Rollout: `batch_generation` in chunks of `local_rollout_forward_batch_size` (64) with
  `output_scores=True`, so fp32 logits of every generated token of the whole local batch are stacked and stay
  referenced (`logitss`) through the PPO epochs; the reference and value forwards return all hidden states.

Conventions for `Setup` fields per kind, the same as the scripts advisor/scriptgen generates:
  reward, dpo: micro_batch = preference pairs per GPU (2 x micro_batch sequences of up to seq_len tokens:
       max_length = seq_len).
  ppo, grpo: seq_len = prompt + response tokens (prompts are cut to seq_len - response_len, at least 8),
       response_len = generated tokens (PPO response_length, GRPO max_completion_length).
  ppo: micro_batch = per_device_train_batch_size and local_rollout_forward_batch_size (the generator sets both),
       so a rollout generates micro_batch sequences at a time for micro_batch x grad_accum prompts per GPU.
  grpo: micro_batch = completions per GPU per micro-step (TRL's per_device_train_batch_size); one generation
       round makes generation_batch_size = lcm(num_generations, micro_batch x GPUs x grad_accum) completions,
       divided over the GPUs, in one `generate` call.
  ref_model: auto (what the generated script does: dpo/ppo/grpo use a reference; grpo's beta is 0.04 from
       rules/hyperparams.toml, while TRL's own GRPO default beta = 0.0 loads none), copy (same as auto),
       precomputed (dpo only), none (grpo only: beta = 0.0). LoRA/QLoRA never get a second copy: the reference
       is the base with the adapter disabled.
  loss: trl 1.16's SFTTrainer, DPOTrainer and GRPOTrainer always patch the policy with `add_fused_lm_head`
       (SFT outputs log_probs/entropy/is_top1, DPO adds mean_logits, GRPO log_probs/entropy; their reference
       models get the head too) and score it with ChunkedLogProbFunction: "fused" (the default) prices that head
       (terms.fused_head_*), "full" the B x S x V logits of the HF loss. DPO labels the prompt -100, which the
       compact CUDA path skips: it is priced on every position (an upper bound); GRPO scores completions only.
       The reward model (AutoModelForSequenceClassification: a score head, no vocabulary) and trl 1.12's PPO
       (full logits from `forward()`) do not depend on it: both are priced with "full".
NB: reward and value models are priced at the policy's architecture (the generated PPO script starts the value
model from the reward model, usually trained from the policy) unless `estimate(..., reward_model=)` names a smaller
one of the same family (InstructGPT's 6B reward model for a 175B policy); GRPO's optional reward model is not priced
(the generated script's default reward is a Python function).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import layouts, parallel
from . import terms as t
from .effective import effective_setup
from .grad_accum import with_accumulation  # micro-steps 2+ hold the gradients (issue 13.4)
from .kind_models import (
    check,
    frozen_setup,
    headless_gradients,
    no_dropout,
    reference_mode,
    reference_weights,
    score_head,
    seqcls_params,
    seqcls_spec,
    value_setup,
)
from .kind_rollout import (
    fused_logprob,
    generation_working_set,
    grpo_generation_batch,
    grpo_round_warning,
    inference_layer,
    kv_cache,
    ppo_scoring,
    prompt_len,
    rollout_logits,
)
from .model import ModelSpec
from .params import ParamCounts, count_params
from .result import FUSED_BACKWARD, FUSED_FORWARD, FUSED_SAVED, LOGITS_BACKWARD, LOGITS_FORWARD, Estimate, phase_total
from .setup import Setup
from .sft import estimate_sft

# Names of the SFT LM-head terms (estimators/sft.py): the HF loss's logits, or TRL's fused head (Setup.loss).
LOGIT_TERMS = (LOGITS_FORWARD, LOGITS_BACKWARD)
FUSED_TERMS = {FUSED_SAVED: t.fused_head_saved, FUSED_FORWARD: t.fused_head_forward, FUSED_BACKWARD: t.fused_head_backward}


@dataclass
class KindPlan:
    """Single-GPU phases of one kind, and what parallel.per_gpu needs to split them."""

    spec: ModelSpec  # the trained model's architecture (units gathered by ZeRO-3/FSDP)
    params: ParamCounts
    trainable: int
    phases: dict[str, list[t.TermValue]]
    paged: int = 0
    master_params: int = 0  # trainable parameters stored in 16 bits (ZeRO adds fp32 masters)
    frozen_sharded: bool = True
    warnings: list[str] = field(default_factory=list)


def _term(name: str, category: str, nbytes: float, note: str) -> t.TermValue:
    return t.TermValue(name, category, int(nbytes), note)


def _sft(m: ModelSpec, setup: Setup, **changes) -> Estimate:
    """The policy's single-GPU SFT phases on the sequences a kind trains on."""
    base = setup.with_(train="sft", parallel="none", gpus=1, nodes=1, offload_optimizer=False, offload_params=False, ref_model="auto", **changes)
    return estimate_sft(m, effective_setup(m, base))


def _lists(est: Estimate) -> dict[str, list[t.TermValue]]:
    return {k: list(v) for k, v in est.phases.items()}


def _master(setup: Setup, n: int) -> int:
    return n if setup.adaptation == "full" and t.weight_bytes_per_param(setup) == 2 else 0


def _is_logits(v: t.TermValue, m: ModelSpec, setup: Setup) -> bool:
    """The SFT head's B x S x V terms, by name (estimators/sft.py names them). Not by size: a term of another kind can
    have the same byte count (Llama 3.2 3B, 2 x 1024 tokens: the logits' 2048 x V x 12 bytes equal the embedding
    gradient's V x h x 8), and was then re-priced on completion tokens, so GRPO's sweep dipped at seq 1024."""
    return v.name in LOGIT_TERMS


def _scored_logits(v: t.TermValue, m: ModelSpec, s_all: Setup, s_scored: Setup) -> t.TermValue:
    """GRPO scores only the completion tokens (TRL passes logits_to_keep = completion length and labels the
    prompt -100, which the fused head's compact path skips), so the SFT head terms are re-priced, with the same
    functions, on micro-batch x response_len tokens (the fused head's last hidden state still spans every token)."""
    if v.name in FUSED_TERMS:
        nbytes = FUSED_TERMS[v.name](m, s_all, s_scored.tokens)
        return t.TermValue(v.name, v.category, nbytes, f"{v.note}; completion tokens scored")
    if not _is_logits(v, m, s_all):
        return v
    backward = v.name == LOGIT_TERMS[1]
    nbytes = t.logits_backward(m, s_scored) if backward else t.logits_forward(m, s_scored)
    return t.TermValue(v.name, v.category, nbytes, f"{v.note}; completion tokens only")


def _forward_name(phases: dict) -> str:
    return "forward" if "forward" in phases else next(iter(phases))


def _steady(values: list[t.TermValue]) -> list[t.TermValue]:
    """Terms alive for the whole step: weights and optimizer states (no gradients: zero_grad(set_to_none))."""
    return [v for v in values if v.category in ("parameters", "optimizer")]


def _reference_terms(m: ModelSpec, setup: Setup, mode: str) -> list[t.TermValue]:
    if mode != "copy":
        return []
    return [_term("reference model", "parameters", reference_weights(m, setup), "frozen copy of the policy, same dtype and quantisation")]


def plan_sft(m: ModelSpec, setup: Setup) -> KindPlan:
    """SFT under a parallel layout: the single-GPU SFT phases, unchanged, for parallel.per_gpu to split."""
    base = _sft(m, setup)
    return KindPlan(m, base.params, base.trainable, _lists(base), base.paged_bytes, _master(setup, base.trainable), warnings=list(base.warnings))


def plan_reward(m: ModelSpec, setup: Setup) -> KindPlan:
    """Reward model training: the seq-cls model (no lm_head) on 2 x micro_batch sequences, no vocabulary logits."""
    setup = no_dropout(setup.with_(loss="full"))  # AutoModelForSequenceClassification: no LM head for TRL to fuse
    rm = seqcls_spec(m)
    pairs2 = setup.with_(micro_batch=2 * setup.micro_batch)
    base = _sft(rm, setup, micro_batch=2 * setup.micro_batch)
    head = _term("score head", "parameters", score_head(m, setup), "Linear(h, 1) with its gradient and states; scalar outputs")
    phases = {k: headless_gradients(k, [v for v in vals if not _is_logits(v, rm, pairs2)], m, setup) + [head]
              for k, vals in base.phases.items()}
    trainable = base.trainable + m.hidden_size
    full = count_params(rm).total if setup.adaptation == "full" else 0
    return KindPlan(rm, seqcls_params(m), trainable, phases, base.paged_bytes, _master(setup, full), warnings=list(base.warnings))


def plan_dpo(m: ModelSpec, setup: Setup) -> KindPlan:
    """DPO: the policy on chosen + rejected (2 x micro_batch sequences), a reference copy (full) or the
    adapter-disabled base (LoRA), and a "reference forward" phase: no_grad over the same 2B sequences while the
    policy's saved activations are alive, with TRL's fused log-prob head (no B x S x V logits)."""
    setup = no_dropout(setup)
    seqs = 2 * setup.micro_batch
    s2 = setup.with_(micro_batch=seqs)
    base = _sft(m, setup, micro_batch=seqs)
    mode = reference_mode(setup)
    ref = _reference_terms(m, setup, mode)
    phases: dict[str, list[t.TermValue]] = {}
    fwd = _forward_name(base.phases)
    for name, vals in base.phases.items():
        phases[name] = list(vals) + ref
        if name == fwd and mode != "precomputed":
            kept = [v for v in vals if not _is_logits(v, m, s2) and v.name not in (FUSED_FORWARD, FUSED_BACKWARD)] + ref
            note = "no_grad forward of the adapter-disabled base" if mode == "adapter" else "no_grad forward of the frozen copy"
            work = inference_layer(m, s2, seqs, setup.seq_len) + fused_logprob(m, s2, seqs * setup.seq_len)
            phases["reference forward"] = kept + [_term("reference forward", "temporaries", work, f"{note}: one layer + fused log-prob tile")]
    warnings = list(base.warnings)
    if mode == "precomputed":
        warnings.append("DPO with precomputed reference log-probs: the pre-pass over the dataset runs before training and needs less memory")
    return KindPlan(m, base.params, base.trainable, phases, base.paged_bytes, _master(setup, base.trainable), warnings=warnings)


def plan_grpo(m: ModelSpec, setup: Setup) -> KindPlan:
    """GRPO: one generation round (KV cache for the round's completions), a reference forward when beta > 0, and
    training on micro_batch completions of prompt + response tokens whose completion tokens are scored."""
    resp, seq = setup.response_len, prompt_len(setup) + setup.response_len
    train_seqs = setup.micro_batch
    gen_seqs = grpo_generation_batch(setup)
    base = _sft(m, setup, seq_len=seq)
    mode = reference_mode(setup)
    ref = _reference_terms(m, setup, mode)
    steady = _steady(base.phases[_forward_name(base.phases)]) + ref
    phases: dict[str, list[t.TermValue]] = {
        "generation": steady + [
            _term("KV cache", "activations", kv_cache(m, setup, gen_seqs, seq), f"{gen_seqs} completions x {seq} tokens (one generation round)"),
            _term("generation working set", "temporaries", generation_working_set(m, setup, gen_seqs, prompt_len(setup), resp), "prefill layer / sampling logits"),
        ],
    }
    s_all = setup.with_(seq_len=seq)
    if mode != "none":
        work = inference_layer(m, s_all, train_seqs, seq) + fused_logprob(m, s_all, train_seqs * resp)
        phases["reference forward"] = steady + [_term("reference forward", "temporaries", work, f"no_grad per-token log-probs of {train_seqs} completions (beta > 0)")]
    s_scored = setup.with_(seq_len=resp)
    for name, vals in base.phases.items():
        phases[name] = [_scored_logits(v, m, s_all, s_scored) for v in vals] + ref
    warnings = list(base.warnings)
    if mode == "none":
        warnings.append("GRPO with beta=0.0 (TRL's default) loads no reference model")
    jump = grpo_round_warning(setup)
    if jump:
        warnings.append(jump)
    return KindPlan(m, base.params, base.trainable, phases, base.paged_bytes, _master(setup, base.trainable), warnings=warnings)


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
    base = _sft(m, setup, seq_len=seq)
    r = reward or m
    at = f"; priced at {r.name}" if r != m else ""  # the term notes name a reward/value model that is not the policy's
    rm = seqcls_spec(r)
    sv = value_setup(setup).with_(seq_len=seq)
    sr = frozen_setup(setup)
    mode = reference_mode(setup)
    value_states = t.optimizer_states(rm, sv)
    paged = setup.optimizer == "paged_adamw8bit"
    extra = _reference_terms(m, setup, mode) + [
        _term("reward model", "parameters", t.base_weights(rm, sr) + r.hidden_size * sr.compute_bytes, f"frozen seq-cls model, compute dtype (4-bit linears for QLoRA){at}"),
        _term("value model", "parameters", t.base_weights(rm, sv) + r.hidden_size * t.weight_bytes_per_param(sv),
              f"seq-cls model trained in full, compute dtype (trl 1.12 never adapts it){at}"),
    ]
    if not paged:
        extra.append(_term("value model optimizer states", "optimizer", value_states, f"{setup.optimizer}, all value-model parameters{at}"))
    logits = _term("rollout logits", "activations", rollout_logits(m, local, resp), f"fp32 scores of {local} rollouts x {resp} tokens, kept through the PPO epochs")
    value_acts = _term("value model activations", "activations", t.stack_activations(rm, sv), f"no gradient checkpointing on the value model{at}")
    value_grads = _term("value model gradients", "gradients", t.gradients(rm, sv), f"one per value-model parameter{at}")
    fwd = _forward_name(base.phases)
    steady = _steady(base.phases[fwd]) + extra
    phases: dict[str, list[t.TermValue]] = {
        "generation": steady + [
            _term("KV cache", "activations", kv_cache(m, setup, chunk, seq), f"{chunk} rollouts x {seq} tokens (local_rollout_forward_batch_size = micro-batch)"),
            _term("generation working set", "temporaries", generation_working_set(m, setup, chunk, prompt_len(setup), resp), "prefill layer / sampling logits"),
            logits,
            _term("rollout logits stacking", "temporaries", rollout_logits(m, chunk, resp), "torch.stack of the chunk's per-step scores"),
        ],
        "generation (pad logits)": steady + [logits, _term("rollout logits padded copy", "temporaries", logits.bytes, "pad() of the chunk list into one tensor")],
        "rollout scoring": steady + [logits, _term("reference and value forwards", "temporaries", ppo_scoring(m, setup, chunk, seq), "no_grad full logits + all hidden states of one chunk")],
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
            phases["backward (value model)"] = steady + policy_grads + [
                logits, value_grads, _term("value layer activations", "activations", bottom, f"bottom value layer and its backward scratch{at}")]
    value_params = count_params(rm).total + r.hidden_size
    trainable = base.trainable + value_params
    master = _master(setup, base.trainable) + (value_params if t.weight_bytes_per_param(sv) == 2 else 0)
    sized = "the size of the policy" if r == m else f"{r.name}, not the policy's {m.name} (same vocabulary)"
    warnings = list(base.warnings) + [
        f"PPO is priced on trl 1.12 (trl.experimental.ppo; removed in trl 1.16): reward and value models {sized}, the value model fully trained"
    ]
    return KindPlan(
        m, base.params, trainable, phases, base.paged_bytes + (value_states if paged else 0), master,
        frozen_sharded=setup.parallel not in layouts.FSDP, warnings=warnings,
    )


PLANS = {"sft": plan_sft, "reward": plan_reward, "dpo": plan_dpo, "ppo": plan_ppo, "grpo": plan_grpo}


def estimate_kind(model: ModelSpec, setup: Setup, reward: ModelSpec | None = None) -> Estimate:
    """Price `setup`'s training kind and parallel layout per GPU (rank 0); `estimate()` delegates here for every
    set-up that is not single-GPU SFT, already made the one that runs (estimators/effective.py). `reward`: PPO's
    reward/value architecture when it is not the policy's (a reward stage is priced on that model itself)."""
    check(setup)
    layouts.check(setup)
    plan = plan_ppo(model, setup, reward) if setup.train == "ppo" else PLANS[setup.train](model, setup)
    gpu = parallel.per_gpu(
        plan.spec, setup, with_accumulation(plan.phases, setup.grad_accum), trainable=plan.trainable, master_params=plan.master_params,
        paged_bytes=plan.paged, frozen_sharded=plan.frozen_sharded,
    )
    phases = {k: tuple(v) for k, v in gpu.phases.items()}
    peak = max(phases, key=lambda name: phase_total(phases[name]))
    return Estimate(
        model=model,
        setup=setup,
        params=plan.params,
        trainable=plan.trainable,
        phases=phases,
        peak_phase=peak,
        paged_bytes=gpu.paged_bytes,
        warnings=tuple(dict.fromkeys(plan.warnings + layouts.warnings(setup))),
        host_offload_bytes=gpu.host_bytes_per_gpu * setup.gpus,
        reward_model=reward,
    )
