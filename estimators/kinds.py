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
model from the reward model, usually trained from the policy); GRPO's optional reward model is not priced
(the generated script's default reward is a Python function).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from . import parallel
from . import terms as t
from .errors import EstimateError
from .result import FUSED_BACKWARD, FUSED_FORWARD, FUSED_SAVED, LOGITS_BACKWARD, LOGITS_FORWARD, Estimate, phase_total
from .sft import estimate_sft, normalised
from .grad_accum import with_accumulation  # micro-steps 2+ hold the gradients (issue 13.4)
from .model import ModelSpec
from .params import ParamCounts, count_params
from .setup import Setup

# Constants read in the TRL sources named above.
GRPO_BETA_DEFAULT = 0.0  # trl 1.16 GRPOConfig.beta; 0.0 -> no reference model is loaded (--ref-model none)
ADVISOR_GRPO_BETA = 0.04  # rules/hyperparams.toml hp.grpo.*: the generated script passes it, so "auto" has a reference
PPO_ROLLOUT_CHUNK = 64  # trl 1.12 PPOConfig.local_rollout_forward_batch_size default (the generator sets micro_batch)
PROMPT_MIN = 8  # the generated PPO script keeps at least 8 prompt tokens: max(8, seq_len - response_len)
FUSED_TOKEN_CHUNK = t.FUSED_TOKEN_CHUNK  # trl/kernels/chunked_logprob.py TOKEN_CHUNK_SIZE
FUSED_VOCAB_CHUNK = t.FUSED_VOCAB_CHUNK  # trl/trainer/utils.py _CHUNKED_LOGPROB_CHUNK_SIZE
FUSED_STATS = t.FUSED_STATS  # fp32 per-token running statistics of the chunked log-prob kernel
# Names of the SFT LM-head terms (estimators/sft.py): the HF loss's logits, or TRL's fused head (Setup.loss).
LOGIT_TERMS = (LOGITS_FORWARD, LOGITS_BACKWARD)
FUSED_TERMS = {FUSED_SAVED: t.fused_head_saved, FUSED_FORWARD: t.fused_head_forward, FUSED_BACKWARD: t.fused_head_backward}


# ---------------------------------------------------------------------------------------------- the models
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
    return m.hidden_size * t.weight_bytes_per_param(setup) * (4 if setup.method == "full" else 5)


def headless_gradients(phase: str, values: list[t.TermValue], m: ModelSpec, setup: Setup) -> list[t.TermValue]:
    """Full fine-tuning of the seq-cls model: seqcls_spec prices it as a tied-embedding model (no lm_head
    parameters), whose SFT phases have the shared V x h gradient from the head's backward at the top of backward.
    With no LM head, the embedding's gradient is the last one backward produces (`embedding_dense_backward`, a
    fresh V x h tensor the AccumulateGrad node keeps as .grad, nothing to add it to): it is left out of the
    backward phases before the end, and the end has no tied-gradient sum. Traced: Qwen2.5 0.5B (152k x 896 tied
    table), reward full b4x2048 with checkpointing, 10 % high without this."""
    if setup.method != "full":
        return values
    emb = m.vocab_size * m.hidden_size * t.trainable_bytes_per_param(setup)
    if phase == "backward (end)":
        return [v for v in values if v.name != "embedding gradient"]
    if phase in ("backward (top layer)", "backward (layers)"):
        return [t.TermValue(v.name, v.category, max(0, v.bytes - emb), f"{v.note}; the embedding's comes last (no LM head)")
                if v.category == "gradients" else v for v in values]
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
    if setup.method == "qlora":
        return setup.with_(kbit_upcast=False)
    return setup.with_(method="full", precision=_compute_precision(setup))


def value_setup(setup: Setup) -> Setup:
    """Set-up of the PPO value model: fully trained (trl 1.12 never adapts it) in the compute dtype, never 4-bit
    (the generated script); no gradient checkpointing: PolicyAndValueWrapper.gradient_checkpointing_enable reaches
    the policy only, and trl 1.12's PPOTrainer.train() (which replaces Trainer.train) never calls it, so the
    policy is checkpointed only when the script enables it (priced from --grad-ckpt) and the value model never."""
    return setup.with_(method="full", precision=_compute_precision(setup), grad_ckpt=False)


def prompt_len(setup: Setup) -> int:
    """PPO/GRPO prompt tokens: seq_len is the whole sequence, the response takes response_len of it."""
    return max(PROMPT_MIN, setup.seq_len - setup.response_len)


def grpo_generation_batch(setup: Setup) -> int:
    """Completions one GPU generates per round: generation_batch_size = lcm(G, micro_batch x world x grad_accum)
    (the generated script; TRL requires a multiple of num_generations), split over the GPUs."""
    world = setup.world_size
    return math.lcm(setup.num_generations, setup.micro_batch * world * setup.grad_accum) // world


def grpo_divides_well(setup: Setup) -> bool:
    """True when the round is no larger than it must be: micro_batch x world x grad_accum divides G or is a
    multiple of it (lcm = the larger of the two), e.g. G = 8 with 1, 2, 4, 8, 16 completions per step."""
    per_step = setup.micro_batch * setup.world_size * setup.grad_accum
    g = setup.num_generations
    return math.lcm(g, per_step) == max(g, per_step)


def grpo_friendly_micro_batches(setup: Setup, upto: int) -> list[int]:
    """The micro-batches 1..upto whose round divides well at this set-up's GPUs and accumulation."""
    return [b for b in range(1, max(1, upto) + 1) if grpo_divides_well(setup.with_(micro_batch=b))]


def grpo_round_warning(setup: Setup) -> str | None:
    """One line when the generation round is a multiple of what the step needs: TRL makes generation_batch_size
    a multiple of num_generations, so a micro-batch that does not divide well multiplies the KV cache."""
    if setup.train != "grpo" or grpo_divides_well(setup):
        return None
    world, g = setup.world_size, setup.num_generations
    per_step = setup.micro_batch * world * setup.grad_accum
    round_ = math.lcm(g, per_step)
    friendly = grpo_friendly_micro_batches(setup, max(2 * g, setup.micro_batch))
    return (f"GRPO generates lcm(num_generations {g}, micro-batch {setup.micro_batch} x {world} GPU x grad-accum {setup.grad_accum} = {per_step}) "
            f"= {round_} completions per round, {round_ // max(g, per_step)}x what a well-dividing batch needs; "
            f"micro-batch {', '.join(map(str, friendly[:6]))} keeps the round (and its KV cache) at its smallest")


# ---------------------------------------------------------------------------------------------- generation
def kv_cache(m: ModelSpec, setup: Setup, sequences: int, tokens: int) -> int:
    """Keys and values of every layer for `sequences` x `tokens` positions in the compute dtype (DynamicCache).
    NB: ignores sliding-window layers' capped caches (Mistral v0.1, Gemma 2/3): an upper bound for them."""
    return 2 * m.num_layers * m.kv_width * setup.compute_bytes * sequences * tokens


def inference_layer(m: ModelSpec, setup: Setup, sequences: int, seq: int) -> int:
    """Transient of one decoder layer under no_grad for `sequences` x `seq` tokens: residual input and output,
    q/k/v and the attention output, the MLP intermediates alive together (gate, up and their product; two for
    plain MLPs; the routed experts for MoE), and eager attention's S x S scores."""
    a, r, h = setup.compute_bytes, t.residual_bytes(setup), m.hidden_size
    if m.is_moe:
        inter = m.experts_per_token * m.expert_intermediate + m.shared_expert_intermediate_size
    else:
        inter = m.intermediate_size
    per_token = 2 * r * h + a * (2 * m.q_width + 2 * m.kv_width) + a * inter * (3 if m.gated_mlp or m.is_moe else 2)
    scores = sequences * m.num_heads * seq * seq * (4 + a) if setup.attention == "eager" else 0
    return per_token * sequences * seq + scores + t.dequant_scratch(m, setup)


def fused_logprob(m: ModelSpec, setup: Setup, tokens: int) -> int:
    """TRL's fused LM head (add_fused_lm_head -> ChunkedLogProbFunction) under no_grad: one [4096 x 32768] tile of
    logits in the compute dtype, the gathered hidden states of the scored tokens and 7 fp32 running statistics
    per token; never the B x S x V logits."""
    tile = t.fused_tile(m, setup, tokens)  # 32768 wide whatever the vocabulary
    return tile + tokens * (m.hidden_size * t.residual_bytes(setup) + 4 * FUSED_STATS)


def generation_working_set(m: ModelSpec, setup: Setup, sequences: int, prompt: int, response: int) -> int:
    """Transient memory of `generate` besides the KV cache: the prefill of one layer over the prompts plus the
    last-position logits and their fp32 copy (transformers computes logits_to_keep=1), or a decoding step's
    vocabulary-sized tensors (logits, fp32 copy, temperature-scaled scores, softmax probabilities), whichever is
    larger, plus DynamicCache's torch.cat copy of one layer's keys and values."""
    a, v = setup.compute_bytes, m.vocab_size
    prefill = inference_layer(m, setup, sequences, prompt) + sequences * v * (a + 4)
    decode = sequences * v * (a + 12) + t.dequant_scratch(m, setup)
    return max(prefill, decode) + kv_cache(m, setup, sequences, prompt + response) // max(1, m.num_layers)


def rollout_logits(m: ModelSpec, sequences: int, response: int) -> int:
    """trl 1.12 PPO: `generate(output_scores=True)` stacks the fp32 scores of every generated token, for the
    whole local batch (B x response x V x 4)."""
    return sequences * response * m.vocab_size * 4


def ppo_scoring(m: ModelSpec, setup: Setup, chunk: int, seq: int) -> int:
    """PPO rollout scoring of one chunk under no_grad: the reference forward's full logits in the compute dtype
    (trl 1.12 `forward()` keeps every position) and all L + 1 hidden states (output_hidden_states=True), plus one
    layer's transient. The value and reward forwards keep the hidden states but only a scalar head: smaller."""
    hidden = (m.num_layers + 1) * chunk * seq * m.hidden_size * t.residual_bytes(setup)
    return chunk * seq * m.vocab_size * setup.compute_bytes + hidden + inference_layer(m, setup, chunk, seq)


# ---------------------------------------------------------------------------------------------- plans
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
    return estimate_sft(m, normalised(m, base))


def _lists(est: Estimate) -> dict[str, list[t.TermValue]]:
    return {k: list(v) for k, v in est.phases.items()}


def _master(setup: Setup, n: int) -> int:
    return n if setup.method == "full" and t.weight_bytes_per_param(setup) == 2 else 0


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


def reference_mode(setup: Setup) -> str:
    """'copy', 'adapter' (LoRA base with the adapter disabled), 'precomputed' or 'none' for this kind."""
    k, r = setup.train, setup.ref_model
    if k == "grpo" and r == "none":
        return "none"  # beta = 0.0 (TRL's GRPOConfig default): GRPOTrainer sets ref_model = None
    if r == "precomputed":
        return "precomputed"
    return "copy" if setup.method == "full" else "adapter"


def check(setup: Setup) -> None:
    """Reference-model choices the trainers cannot honour, one line each."""
    k, r = setup.train, setup.ref_model
    if k in ("sft", "reward") and r != "auto":
        raise EstimateError(f"--ref-model applies to --train dpo, ppo or grpo, not {k}")
    if r == "precomputed" and k != "dpo":
        raise EstimateError("--ref-model precomputed exists only for DPO (precompute_ref_log_probs); use auto or copy")
    if r == "none" and k in ("dpo", "ppo"):
        raise EstimateError(f"{k.upper()} needs reference log-probs: use --ref-model auto" + (" or precomputed" if k == "dpo" else ""))


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
    full = count_params(rm).total if setup.method == "full" else 0
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


def plan_ppo(m: ModelSpec, setup: Setup) -> KindPlan:
    """PPO (trl 1.12): rollout generation micro_batch sequences at a time with stored fp32 scores, no_grad scoring
    by the reference, value and reward models, then PPO epochs on micro-batches of prompt + response tokens where
    the policy and the fully trained value model run forward and backward together. trl 1.12 computes the policy's
    logits in full (`forward()` then log-softmax): priced with the HF loss whatever Setup.loss says."""
    setup = setup.with_(loss="full")
    resp, seq = setup.response_len, prompt_len(setup) + setup.response_len
    local = setup.micro_batch * setup.grad_accum
    chunk = setup.micro_batch  # local_rollout_forward_batch_size as the generated script sets it
    base = _sft(m, setup, seq_len=seq)
    rm = seqcls_spec(m)
    sv = value_setup(setup).with_(seq_len=seq)
    sr = frozen_setup(setup)
    mode = reference_mode(setup)
    value_states = t.optimizer_states(rm, sv)
    paged = setup.optimizer == "paged_adamw8bit"
    extra = _reference_terms(m, setup, mode) + [
        _term("reward model", "parameters", t.base_weights(rm, sr) + m.hidden_size * sr.compute_bytes, "frozen seq-cls model, compute dtype (4-bit linears for QLoRA)"),
        _term("value model", "parameters", t.base_weights(rm, sv) + m.hidden_size * t.weight_bytes_per_param(sv), "seq-cls model trained in full, compute dtype (trl 1.12 never adapts it)"),
    ]
    if not paged:
        extra.append(_term("value model optimizer states", "optimizer", value_states, f"{setup.optimizer}, all value-model parameters"))
    logits = _term("rollout logits", "activations", rollout_logits(m, local, resp), f"fp32 scores of {local} rollouts x {resp} tokens, kept through the PPO epochs")
    value_acts = _term("value model activations", "activations", t.stack_activations(rm, sv), "no gradient checkpointing on the value model")
    value_grads = _term("value model gradients", "gradients", t.gradients(rm, sv), "one per value-model parameter")
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
            phases["backward (value model)"] = steady + policy_grads + [logits, value_grads, _term("value layer activations", "activations", bottom, "bottom value layer and its backward scratch")]
    value_params = count_params(rm).total + m.hidden_size
    trainable = base.trainable + value_params
    master = _master(setup, base.trainable) + (value_params if t.weight_bytes_per_param(sv) == 2 else 0)
    warnings = list(base.warnings) + [
        "PPO is priced on trl 1.12 (trl.experimental.ppo; removed in trl 1.16): reward and value models the size of the policy, the value model fully trained"
    ]
    return KindPlan(
        m, base.params, trainable, phases, base.paged_bytes + (value_states if paged else 0), master,
        frozen_sharded=setup.parallel not in parallel.FSDP, warnings=warnings,
    )


PLANS = {"sft": plan_sft, "reward": plan_reward, "dpo": plan_dpo, "ppo": plan_ppo, "grpo": plan_grpo}


def estimate_kind(model: ModelSpec, setup: Setup) -> Estimate:
    """Price `setup`'s training kind and parallel layout per GPU (rank 0); `estimate()` delegates here for every
    set-up that is not single-GPU SFT."""
    check(setup)
    parallel.check(setup)
    priced = parallel.priced_setup(setup)
    plan = PLANS[setup.train](model, priced)
    gpu = parallel.per_gpu(
        plan.spec, priced, with_accumulation(plan.phases, priced.grad_accum), trainable=plan.trainable, master_params=plan.master_params,
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
        warnings=tuple(dict.fromkeys(plan.warnings + parallel.warnings(setup))),
        host_offload_bytes=gpu.host_bytes_per_gpu * setup.gpus,
    )
