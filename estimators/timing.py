"""How long one optimizer step takes, term by term, on one GPU of the run (pure Python, no torch).

A step is `grad_accum` micro-batches of forward and backward (estimators/time_layer.py) plus one optimizer step,
plus what the training kind adds (DPO's reference forward, GRPO/PPO generation and scoring) and what the parallel
layout adds (collectives over the GPU link or the network, CPU offload over PCIe: estimators/time_step_terms.py).
Each term is timed on a roofline (estimators/roofline.py) from its FLOPs (estimators/flops.py) and the bytes it
moves. Not modelled: data loading (assumed overlapped), evaluation, checkpoint saving, logging, the first steps'
compile and allocator warm-up.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import flops as fl
from . import terms as t
from .dtypes import four_bit_bytes_per_param
from .effective import effective_setup
from .errors import EstimateError
from .gpus import Gpu
from .kind_models import TRAINED_SEQUENCES, reward_value_spec
from .kind_rollout import grpo_generation_batch, prompt_len
from .model import ModelSpec
from .params import count_params
from .roofline import DEFAULT, Constants, Roof, dispatch_time, memory_time
from .setup import Setup
from .time_bytes import layer_kernels
from .time_layer import HEAD_KERNELS, forward_only, train_micro_batch
from .time_step_terms import comm_bytes, link_bytes_per_s, offload_terms, optimizer_time

PPO_EPOCHS = 4  # trl 1.12 PPOConfig.num_ppo_epochs default
# Weight bytes a 16-bit decoding step reads besides the weights themselves is the KV cache; bitsandbytes 4-bit
# decoding dequantises each weight per token (its gemv reads the packed weight: four_bit_bytes_per_param).


@dataclass(frozen=True)
class TimeTerm:
    name: str
    seconds: float  # per optimizer step, on one GPU
    bound: str  # compute | memory | launch | link | pcie | cpu
    note: str = ""


@dataclass(frozen=True)
class StepTime:
    """One optimizer step on one GPU of the run."""

    gpu: Gpu
    setup: Setup
    terms: tuple[TimeTerm, ...]
    tokens: int  # tokens processed per optimizer step per GPU (the trained sequences' tokens, padding included)
    sequences: int  # training examples per optimizer step per GPU (pairs for reward / DPO, prompts for PPO / GRPO)
    flops: float  # model FLOPs per optimizer step per GPU (for the utilisation figure)

    @property
    def seconds(self) -> float:
        return sum(term.seconds for term in self.terms)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    @property
    def hfu(self) -> float:
        """Hardware FLOPs utilisation: the FLOPs the GPU runs per step (checkpoint recompute included, generation
        excluded) / (step time x the card's dense peak)."""
        peak = self.gpu.peak_flops or 0.0
        return self.flops / (self.seconds * peak) if peak else 0.0


def roof_for(gpu: Gpu, setup: Setup) -> Roof:
    """The card's roofs for the run's compute dtype: the bf16 peak for bf16 on a card that has it, else the fp16
    peak (a card without bf16 runs fp16: advisor/advice/hardware.py's Hw.precision), plain FP32 for fp32 runs."""
    if not gpu.timed:
        raise EstimateError(f"no speed figures for '{gpu.name}' in rules/gpus.toml: name a GPU from `advisor gpus` to get a time estimate")
    half, bandwidth = gpu.peak_flops, gpu.memory_bytes_per_s
    assert half is not None and bandwidth is not None  # gpu.timed
    fp32 = (gpu.fp32_tflops or (half / 8e12)) * 1e12
    if setup.precision == "fp32":
        peak = fp32
    elif setup.precision.startswith("bf16") and gpu.bf16 and gpu.bf16_tflops:
        peak = gpu.bf16_tflops * 1e12
    else:
        peak = (gpu.fp16_tflops or gpu.bf16_tflops or 0.0) * 1e12
    return Roof(peak_flops=peak, fp32_flops=fp32, bandwidth=bandwidth)


def _sft_like(
    m: ModelSpec, setup: Setup, gpu: Gpu, c: Constants, batch: int, seq: int, scored: int | None = None, vocab: int | None = None
) -> tuple[dict[str, tuple[float, str]], float]:
    """grad_accum micro-batches of forward + backward: {term: (seconds per step, bound)}, FLOPs per step."""
    roof = roof_for(gpu, setup)
    one = train_micro_batch(m, setup, roof, c, batch, seq, scored, vocab)
    terms = {k: (v * setup.grad_accum, b) for k, (v, b) in one.items()}
    f = fl.step_flops(m, setup, batch, seq, scored, causal=t.causal_attention(m, setup), flash=t.attention_kernel(m, setup) != "eager")
    return terms, f.total * setup.grad_accum


def _generation(
    m: ModelSpec, setup: Setup, roof: Roof, c: Constants, sequences: int, prompt: int, response: int, chunk: int | None = None
) -> dict[str, tuple[float, str]]:
    """`generate` with a KV cache: the prefill of the prompts (compute-bound, a forward) and `response` decoding
    steps, each reading every weight and the cache once (bandwidth-bound) and launching a forward's kernels."""
    chunk = chunk or sequences
    rounds = -(-sequences // chunk)
    prefill = rounds * forward_only(m, setup, roof, c, chunk, prompt, vocab=m.vocab_size, scored=chunk)
    pc = count_params(m)
    weights = (
        t.base_weights(m, setup)
        if setup.adaptation != "qlora"
        else pc.linear * (four_bit_bytes_per_param(setup.double_quant) + setup.compute_bytes) + pc.non_linear * setup.compute_bytes
    )
    if m.is_moe:  # a decoding batch touches up to all experts; with few sequences only the routed ones
        frac = min(1.0, chunk * m.experts_per_token / m.num_experts)
        weights *= (pc.active + frac * (pc.total - pc.active)) / pc.total
    kv_per_token = 2 * m.num_layers * m.kv_width * setup.compute_bytes
    mean_ctx = prompt + response / 2
    per_step_bytes = weights + chunk * mean_ctx * kv_per_token
    per_step_flops = 2.0 * pc.active * chunk + m.num_layers * 4.0 * chunk * mean_ctx * m.q_width
    kernels = m.num_layers * layer_kernels(m, setup) + HEAD_KERNELS
    step = max(memory_time(roof, c, per_step_bytes), per_step_flops / (roof.peak_flops * c.matmul_efficiency), dispatch_time(c, kernels))
    return {"generation: prefill": (prefill, "compute"), "generation: decode": (rounds * response * step, "memory")}


def step_time(model: ModelSpec, setup: Setup, gpu: Gpu, constants: Constants = DEFAULT, reward_model: ModelSpec | None = None) -> StepTime:
    """One optimizer step of `setup` on `model`, on one GPU of type `gpu`, term by term. `reward_model`: the reward
    and value models' architecture when it is not the policy's, as estimate() takes it (a reward stage trains it;
    PPO's reward and value forwards and the value model's training run on it)."""
    asked = setup
    setup = effective_setup(model, setup)  # what runs, as estimate() prices it
    rv = reward_value_spec(model, setup, reward_model) or model
    if setup.train == "reward" and rv is not model:
        model, setup = rv, effective_setup(rv, asked)
    m, c = model, constants
    roof = roof_for(gpu, setup)
    seq = setup.seq_len
    ga = setup.grad_accum
    notes: dict[str, str] = {}
    if setup.train == "sft":
        # an encoder's classifier scores each sequence's first token into num_labels, not every token into the vocabulary
        head = {"scored": setup.micro_batch, "vocab": m.num_labels} if m.encoder else {}
        terms, flops = _sft_like(m, setup, gpu, c, setup.micro_batch, seq, **head)
        tokens, sequences = setup.micro_batch * seq * ga, setup.micro_batch * ga
    elif setup.train == "reward":  # chosen and rejected in one forward; a score head instead of the vocabulary
        seqs = TRAINED_SEQUENCES["reward"] * setup.micro_batch
        terms, flops = _sft_like(m, setup, gpu, c, seqs, seq, vocab=1)
        tokens, sequences = seqs * seq * ga, setup.micro_batch * ga
    elif setup.train == "dpo":
        seqs = TRAINED_SEQUENCES["dpo"] * setup.micro_batch
        terms, flops = _sft_like(m, setup, gpu, c, seqs, seq)
        if setup.ref_model != "none":
            ref = forward_only(m, setup, roof, c, seqs, seq, lora=False)
            terms["reference forward"] = (ga * ref, "compute")
            if setup.ref_model == "precomputed":
                notes["reference forward"] = "precomputed in a pre-pass over the data: the same forward, once per example"
        tokens, sequences = seqs * seq * ga, setup.micro_batch * ga
    elif setup.train == "grpo":  # one optimizer step, with its share of the generation round that feeds it
        prompt, resp = prompt_len(setup), setup.response_len
        seq = prompt + resp
        gen = grpo_generation_batch(setup)
        terms, flops = _sft_like(m, setup, gpu, c, setup.micro_batch, seq, scored=setup.micro_batch * resp)
        share = setup.micro_batch * ga / gen  # optimizer steps consume micro_batch x grad_accum of gen completions
        for k, (v, b) in _generation(m, setup, roof, c, gen, prompt, resp).items():
            terms[k] = (v * share, b)
        if setup.ref_model != "none":
            ref = forward_only(m, setup, roof, c, gen, seq, lora=False, scored=gen * resp)
            terms["reference forward"] = (ref * share, "compute")
        tokens, sequences = setup.micro_batch * seq * ga, setup.micro_batch * ga
    elif setup.train == "ppo":
        prompt, resp = prompt_len(setup), setup.response_len
        seq = prompt + resp
        batch = setup.micro_batch * ga
        policy, flops = _sft_like(m, setup, gpu, c, setup.micro_batch, seq, scored=setup.micro_batch * resp)
        value, vflops = _sft_like(rv, setup.without_adapter(grad_ckpt=False), gpu, c, setup.micro_batch, seq, vocab=1)
        terms = {f"policy {k}": (v * PPO_EPOCHS, b) for k, (v, b) in policy.items()}
        terms["value model train"] = (PPO_EPOCHS * sum(v for v, _ in value.values()), "compute")
        flops = PPO_EPOCHS * (flops + vflops)
        terms.update(_generation(m, setup, roof, c, batch, prompt, resp, chunk=setup.micro_batch))
        frozen = setup.without_adapter(grad_ckpt=False) if setup.adaptation == "full" else setup
        scoring = forward_only(m, frozen, roof, c, setup.micro_batch, seq, lora=False)  # the reference (the policy's)
        # The reward forward is timed with an LM head like the reference's (as it always was: an upper bound), the value
        # forward with its scalar head; both on the reward/value architecture.
        scoring_reward = scoring if rv is m else forward_only(rv, frozen, roof, c, setup.micro_batch, seq, lora=False)
        scoring_value = forward_only(rv, frozen, roof, c, setup.micro_batch, seq, lora=False, vocab=1)
        terms["reference, reward and value scoring"] = (ga * (scoring + scoring_reward + scoring_value), "compute")
        if rv is not m:
            notes["reference, reward and value scoring"] = notes["value model train"] = f"reward and value models: {rv.name}"
        terms["policy log-probs of the rollout"] = (ga * forward_only(m, setup, roof, c, setup.micro_batch, seq), "compute")
        tokens, sequences = batch * seq, batch
    else:  # pragma: no cover - a Setup refuses other kinds when built
        raise EstimateError(f"no time model for training kind '{setup.train}'")
    terms["optimizer step"] = (optimizer_time(m, setup, roof, c), "memory")
    for name, nbytes in comm_bytes(m, setup).items():
        bw, link = link_bytes_per_s(gpu, setup, name)
        terms[name] = (nbytes / (bw * c.link_efficiency), "link")
        notes[name] = f"{nbytes / 1e9:.2f} GB over {link}"
    terms.update(offload_terms(m, setup, gpu, c))
    out = tuple(TimeTerm(k, v, b, notes.get(k, "")) for k, (v, b) in terms.items() if v > 0)
    return StepTime(gpu=gpu, setup=setup, terms=out, tokens=int(tokens), sequences=int(sequences), flops=flops)
