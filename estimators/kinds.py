"""Training kinds beyond SFT (reward, DPO, PPO, GRPO) as phases of one step, then priced per GPU by parallel.py.

Each kind starts from the SFT phases that `estimate()` computes for the policy (so the policy's weights, LoRA,
optimizer, activations and logits follow the SFT physics of terms.py) on the sequences the kind really trains on,
and adds what the kind keeps besides: extra models, a reference forward, rollout generation with its KV cache.
Extra models are separate terms named "reference model", "reward model", "value model", and the cache "KV cache".
The pieces every kind's plan is built from are in kind_phases.py, PPO's plan in kind_ppo.py, its extra models in
kind_models.py and generation in kind_rollout.py; this module holds the other kinds' plans and prices any kind per GPU.

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

from . import layouts, parallel
from . import terms as t
from .grad_accum import with_accumulation  # micro-steps 2+ hold the gradients (issue 13.4)
from .kind_models import TRAINED_SEQUENCES, check, headless_gradients, no_dropout, reference_mode, score_head, seqcls_params, seqcls_spec
from .kind_phases import (
    KindPlan,
    forward_name,
    is_logits,
    master_params,
    phase_lists,
    reference_terms,
    scored_logits,
    sft_phases,
    steady_terms,
    term,
)
from .kind_ppo import plan_ppo
from .kind_rollout import fused_logprob, generation_working_set, grpo_generation_batch, grpo_round_warning, inference_layer, kv_cache, prompt_len
from .model import ModelSpec
from .params import count_params
from .result import FUSED_BACKWARD, FUSED_FORWARD, Estimate, phase_total
from .setup import Setup
from .stacks import apply_stack


def plan_sft(m: ModelSpec, setup: Setup) -> KindPlan:
    """SFT under a parallel layout: the single-GPU SFT phases, unchanged, for parallel.per_gpu to split."""
    base = sft_phases(m, setup)
    master = master_params(setup, base.trainable)
    return KindPlan(m, base.params, base.trainable, phase_lists(base), base.paged_bytes, master, warnings=list(base.warnings))


def plan_reward(m: ModelSpec, setup: Setup) -> KindPlan:
    """Reward model training: the seq-cls model (no lm_head) on 2 x micro_batch sequences, no vocabulary logits."""
    setup = no_dropout(setup.with_(loss="full"))  # AutoModelForSequenceClassification: no LM head for TRL to fuse
    rm = seqcls_spec(m)
    pairs2 = setup.with_(micro_batch=TRAINED_SEQUENCES["reward"] * setup.micro_batch)
    base = sft_phases(rm, setup, micro_batch=pairs2.micro_batch)
    head = term("score head", "parameters", score_head(m, setup), "Linear(h, 1) with its gradient and states; scalar outputs")
    phases = {k: headless_gradients(k, [v for v in vals if not is_logits(v, rm, pairs2)], m, setup) + [head] for k, vals in base.phases.items()}
    trainable = base.trainable + m.hidden_size
    full = count_params(rm).total if setup.adaptation == "full" else 0
    return KindPlan(rm, seqcls_params(m), trainable, phases, base.paged_bytes, master_params(setup, full), warnings=list(base.warnings))


def plan_dpo(m: ModelSpec, setup: Setup) -> KindPlan:
    """DPO: the policy on chosen + rejected (2 x micro_batch sequences), a reference copy (full) or the
    adapter-disabled base (LoRA), and a "reference forward" phase: no_grad over the same 2B sequences while the
    policy's saved activations are alive, with TRL's fused log-prob head (no B x S x V logits)."""
    setup = no_dropout(setup)
    seqs = TRAINED_SEQUENCES["dpo"] * setup.micro_batch
    s2 = setup.with_(micro_batch=seqs)
    base = sft_phases(m, setup, micro_batch=seqs)
    mode = reference_mode(setup)
    ref = reference_terms(m, setup, mode)
    phases: dict[str, list[t.TermValue]] = {}
    fwd = forward_name(base.phases)
    for name, vals in base.phases.items():
        phases[name] = list(vals) + ref
        if name == fwd and mode != "precomputed":
            kept = [v for v in vals if not is_logits(v, m, s2) and v.name not in (FUSED_FORWARD, FUSED_BACKWARD)] + ref
            note = "no_grad forward of the adapter-disabled base" if mode == "adapter" else "no_grad forward of the frozen copy"
            work = inference_layer(m, s2, seqs, setup.seq_len) + fused_logprob(m, s2, seqs * setup.seq_len)
            phases["reference forward"] = kept + [term("reference forward", "temporaries", work, f"{note}: one layer + fused log-prob tile")]
    warnings = list(base.warnings)
    if mode == "precomputed":
        warnings.append("DPO with precomputed reference log-probs: the pre-pass over the dataset runs before training and needs less memory")
    return KindPlan(m, base.params, base.trainable, phases, base.paged_bytes, master_params(setup, base.trainable), warnings=warnings)


def plan_grpo(m: ModelSpec, setup: Setup) -> KindPlan:
    """GRPO: one generation round (KV cache for the round's completions), a reference forward when beta > 0, and
    training on micro_batch completions of prompt + response tokens whose completion tokens are scored."""
    resp, seq = setup.response_len, prompt_len(setup) + setup.response_len
    train_seqs = setup.micro_batch
    gen_seqs = grpo_generation_batch(setup)
    base = sft_phases(m, setup, seq_len=seq)
    mode = reference_mode(setup)
    ref = reference_terms(m, setup, mode)
    steady = steady_terms(base.phases[forward_name(base.phases)]) + ref
    phases: dict[str, list[t.TermValue]] = {
        "generation": steady
        + [
            term("KV cache", "activations", kv_cache(m, setup, gen_seqs, seq), f"{gen_seqs} completions x {seq} tokens (one generation round)"),
            term(
                "generation working set",
                "temporaries",
                generation_working_set(m, setup, gen_seqs, prompt_len(setup), resp),
                "prefill layer / sampling logits",
            ),
        ],
    }
    s_all = setup.with_(seq_len=seq)
    if mode != "none":
        work = inference_layer(m, s_all, train_seqs, seq) + fused_logprob(m, s_all, train_seqs * resp)
        phases["reference forward"] = steady + [
            term("reference forward", "temporaries", work, f"no_grad per-token log-probs of {train_seqs} completions (beta > 0)")
        ]
    s_scored = setup.with_(seq_len=resp)
    for name, vals in base.phases.items():
        phases[name] = [scored_logits(v, m, s_all, s_scored) for v in vals] + ref
    warnings = list(base.warnings)
    if mode == "none":
        warnings.append("GRPO with beta=0.0 (TRL's default) loads no reference model")
    jump = grpo_round_warning(setup)
    if jump:
        warnings.append(jump)
    return KindPlan(m, base.params, base.trainable, phases, base.paged_bytes, master_params(setup, base.trainable), warnings=warnings)


PLANS = {"sft": plan_sft, "reward": plan_reward, "dpo": plan_dpo, "ppo": plan_ppo, "grpo": plan_grpo}


def estimate_kind(model: ModelSpec, setup: Setup, reward: ModelSpec | None = None) -> Estimate:
    """Price `setup`'s training kind and parallel layout per GPU (rank 0); `estimate()` delegates here for every
    set-up that is not single-GPU SFT, already made the one that runs (estimators/effective.py). `reward`: PPO's
    reward/value architecture when it is not the policy's (a reward stage is priced on that model itself)."""
    check(setup)
    layouts.check(setup)
    plan = plan_ppo(model, setup, reward) if setup.train == "ppo" else PLANS[setup.train](model, setup)
    gpu = parallel.per_gpu(
        plan.spec,
        setup,
        with_accumulation(plan.phases, setup.grad_accum),
        trainable=plan.trainable,
        master_params=plan.master_params,
        paged_bytes=plan.paged,
        frozen_sharded=plan.frozen_sharded,
    )
    phases = {k: tuple(v) for k, v in gpu.phases.items()}
    peak = max(phases, key=lambda name: phase_total(phases[name]))
    return apply_stack(
        Estimate(  # the behaviours of the layout itself (rules/stacks.toml after_layout rows)
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
        ),
        after_layout=True,
    )
