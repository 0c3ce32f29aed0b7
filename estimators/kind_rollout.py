"""PPO and GRPO rollouts: how many prompt tokens and completions a generation round holds, and the memory of
`generate` (KV cache, working set, PPO's stored scores) and of the no_grad forwards that score it.

Used by estimators/kinds.py (memory) and estimators/timing.py (time); the TRL sources are listed in kinds.py.
"""

from __future__ import annotations

import math

from . import terms as t
from .model import ModelSpec
from .setup import Setup

PPO_ROLLOUT_CHUNK = 64  # trl 1.12 PPOConfig.local_rollout_forward_batch_size default (the generator sets micro_batch)
PROMPT_MIN = 8  # the generated PPO script keeps at least 8 prompt tokens: max(8, seq_len - response_len)
FUSED_TOKEN_CHUNK = t.FUSED_TOKEN_CHUNK  # trl/kernels/chunked_logprob.py TOKEN_CHUNK_SIZE
FUSED_VOCAB_CHUNK = t.FUSED_VOCAB_CHUNK  # trl/trainer/utils.py _CHUNKED_LOGPROB_CHUNK_SIZE
FUSED_STATS = t.FUSED_STATS  # fp32 per-token running statistics of the chunked log-prob kernel


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
    return (
        f"GRPO generates lcm(num_generations {g}, micro-batch {setup.micro_batch} x {world} GPU x grad-accum {setup.grad_accum} = {per_step}) "
        f"= {round_} completions per round, {round_ // max(g, per_step)}x what a well-dividing batch needs; "
        f"micro-batch {', '.join(map(str, friendly[:6]))} keeps the round (and its KV cache) at its smallest"
    )


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
