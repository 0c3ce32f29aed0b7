"""How long one optimizer step takes, term by term, on one GPU of the run (pure Python, no torch).

A step is `grad_accum` micro-batches of forward and backward plus one optimizer step, plus what the training kind
adds (DPO's reference forward, GRPO/PPO generation and scoring) and what the parallel layout adds (collectives
over the GPU link or the network, CPU offload over PCIe). Each term is timed on a roofline
(estimators/roofline.py) from its FLOPs (estimators/flops.py) and the bytes it moves; a decoder layer is also
bounded below by the CPU time to launch its kernels (eager PyTorch), which is what small micro-batches hit.

Bytes moved are counted from the Hugging Face modelling code the memory model reads (estimators/terms.py): every
unfused elementwise op reads its inputs and writes its output once. The per-op counts are in the functions below;
backward elementwise work is taken as twice the forward's (gradients read the saved input and the incoming
gradient and write one gradient per input). Not modelled: data loading (assumed overlapped), evaluation,
checkpoint saving, logging, the first steps' compile and allocator warm-up.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import flops as fl
from . import terms as t
from .dtypes import four_bit_bytes_per_param
from .errors import EstimateError
from .gpus import Gpu
from .kinds import grpo_generation_batch, prompt_len
from .model import ModelSpec
from .params import count_params
from .roofline import (CPU_ADAM_PARAMS_PER_S, DEFAULT, INTER_NODE_GBS, Constants, Roof, attention_time,
                       dispatch_time, matmul_time, memory_time)
from .setup import Setup

BACKWARD_ELEMENTWISE = 2.0  # backward elementwise bytes per forward byte (reads saved input + gradient, writes one)
BACKWARD_KERNELS = 2.0  # autograd launches about two kernels per forward op (grad of each input, accumulation)
# Kernels one decoder layer launches in forward, counted in transformers' Llama/Mistral modelling code: two RMSNorms
# (7 ops each: cast, pow, mean, add, rsqrt, mul, cast, weight mul), RoPE on q and k (10), seven linears and reshapes
# (10), the attention call (3), SiLU and the gate product (2), two residual adds (2).
LAYER_KERNELS = 41
LORA_KERNELS = 6  # per adapted linear: dropout, A, B, scaling, add, the fp32 cast of x (peft lora.Linear.forward)
DEQUANT_KERNELS = 1  # bitsandbytes dequantize_4bit before each matmul of a 4-bit weight
HEAD_KERNELS = 12  # final norm, head matmul, upcast, log-softmax, gather, mean (HF ForCausalLMLoss), and backward
# Bytes per logit of the loss, forward and backward. HF ForCausalLMLoss: logits written (a), upcast (a in, 4 out),
# log-softmax (4 in, 4 out), its backward (4 + 4 in, 4 out) and the cast of the gradient (4 in, a out): 28 + 3a.
# TRL's fused chunked log-prob head keeps the [4096 x 32768] tile in cache-sized chunks: the tile is written
# and read once in forward and recomputed in backward (4a).
FULL_LOSS_BYTES = 28
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
    peak (a card without bf16 runs fp16: advisor/core.py's Hw.precision), plain FP32 for fp32 runs."""
    if not gpu.timed:
        raise EstimateError(f"no speed figures for '{gpu.name}' in rules/gpus.toml: name a GPU from `advisor gpus` "
                            "to get a time estimate")
    fp32 = (gpu.fp32_tflops or (gpu.peak_flops / 8e12)) * 1e12
    if setup.precision == "fp32":
        peak = fp32
    elif setup.precision.startswith("bf16") and gpu.bf16 and gpu.bf16_tflops:
        peak = gpu.bf16_tflops * 1e12
    else:
        peak = (gpu.fp16_tflops or gpu.bf16_tflops) * 1e12
    return Roof(peak_flops=peak, fp32_flops=fp32, bandwidth=gpu.memory_bytes_per_s)


# ------------------------------------------------------------------------------------------------ bytes moved
def norm_bytes(m: ModelSpec, setup: Setup, width: int) -> float:
    """Bytes one pre-norm moves per token in forward. HF RMSNorm: cast to fp32 (r in, 4 out; skipped when the
    stream is already fp32), square, mean, scale (4 in / 4 out each), cast back (4 in, a out), weight (a in, a out):
    (r + 28 + 3a) per element. LayerNorm is one fused kernel: r in, a out."""
    r, a = t.residual_bytes(setup), setup.compute_bytes
    if m.norm == "layer":
        return width * (r + a)
    return width * (r + 24 + 3 * a + (4 if r != 4 else 0))


def layer_elementwise_bytes(m: ModelSpec, setup: Setup) -> float:
    """Bytes per token of one decoder layer's unfused elementwise ops in forward (matmuls and attention apart)."""
    r, a = t.residual_bytes(setup), setup.compute_bytes
    h = m.hidden_size
    norms = m.norms_per_layer * norm_bytes(m, setup, h)
    if m.qk_norm:
        norms += norm_bytes(m, setup, m.q_width + m.kv_width)
    residual = 2 * 3 * h * r  # two residual adds: read both, write one
    rope = 0 if m.learned_positions else 10 * a * (m.q_width + m.kv_width)  # q*cos, rotate_half (neg, cat), *sin, add
    inter = m.intermediate_size if not m.is_moe else m.expert_intermediate * m.experts_per_token
    act = (5 if m.gated_mlp else 2) * a * inter  # act(gate) r/w, * up r r w; GELU r/w
    moe = 0.0
    if m.is_moe:  # router softmax/top-k and the token permutation in and out of the experts (read and write)
        moe = 4 * a * h * m.experts_per_token + 8 * m.num_experts
    dropout = 0.0
    return norms + residual + rope + act + moe + dropout


def lora_elementwise_bytes(m: ModelSpec, setup: Setup) -> float:
    """Bytes per token of peft's LoRA branches in forward: dropout of x (read, write, 1-byte mask) when
    lora_dropout > 0, the cast of x to the adapter's fp32 dtype outside autocast, and scaling plus the add of
    the branch to the base output (read both, write one, in the output dtype)."""
    a = setup.compute_bytes
    total = 0.0
    for lin in t.lora_linears(m, setup):
        if t.wrapped_parameter(lin):
            continue
        share = m.experts_per_token / m.num_experts if lin.group == "expert" else 1.0
        fan_in, fan_out = lin.in_features, lin.out_features
        x = fan_in * ((2 * a + 1) if setup.lora_dropout else 0) + (fan_in * (a + 4) if not t.uses_autocast(setup) else 0)
        total += share * lin.count * (x + fan_out * (2 * a + 4 + 3 * a))
    return total


def layer_kernels(m: ModelSpec, setup: Setup) -> float:
    """Kernels one decoder layer launches in forward (LoRA branches and 4-bit dequantisation included)."""
    n = LAYER_KERNELS + (4 if m.qk_norm else 0) + (6 + 4 * m.experts_per_token if m.is_moe else 0)
    n += LORA_KERNELS * sum(1 if t.wrapped_parameter(lin) else lin.count for lin in t.lora_linears(m, setup)
                            if not (lin.group == "expert" and not t.wrapped_parameter(lin))) \
        + LORA_KERNELS * m.experts_per_token * sum(1 for lin in t.lora_linears(m, setup)
                                                   if lin.group == "expert" and not t.wrapped_parameter(lin))
    if setup.method == "qlora":
        n += DEQUANT_KERNELS * sum(1 for lin in fl.active_linears(m) if lin.module)
    return n


# ------------------------------------------------------------------------------------------------ one layer
@dataclass(frozen=True)
class Pass:
    """The GPU time of one decoder layer pass over a micro-batch, split by what bounds it."""

    matmul: float
    attention: float
    elementwise: float
    kernels: float

    def gpu(self) -> float:
        return self.matmul + self.attention + self.elementwise


def _weight_read_bytes(m: ModelSpec, setup: Setup, lin) -> float:
    """Bytes of one linear's weight a matmul reads: the compute-dtype copy (for QLoRA the dequantised one)."""
    return lin.in_features * lin.out_features * lin.count * setup.compute_bytes


def _linears_time(m: ModelSpec, setup: Setup, roof: Roof, c: Constants, tokens: int, weight_grad: bool,
                  backward: bool) -> float:
    a = setup.compute_bytes
    fp32 = setup.precision == "fp32"
    total = 0.0
    for mm, lin in zip(fl.linear_matmuls(m, tokens), fl.active_linears_routed(m)):
        nbytes = mm.count * (mm.m * mm.k + mm.m * mm.n) * a + _weight_read_bytes(m, setup, lin)
        one = matmul_time(roof, c, mm.flops, mm.m, nbytes, fp32)
        total += one * ((1 + (1 if weight_grad else 0)) if backward else 1)
    return total


def _lora_time(m: ModelSpec, setup: Setup, roof: Roof, c: Constants, tokens: int, backward: bool) -> float:
    total = 0.0
    fp32 = not t.uses_autocast(setup)  # outside autocast peft runs the branch in the adapters' fp32
    for mm in fl.lora_matmuls(m, setup, tokens):
        nbytes = mm.count * (mm.m * mm.k + mm.k * mm.n + mm.m * mm.n) * (4 if fp32 else setup.compute_bytes)
        one = matmul_time(roof, c, mm.flops, mm.m, nbytes, fp32)
        total += one * (2 if backward else 1)  # backward: input grad and weight grad
    return total


def _dequant_time(m: ModelSpec, setup: Setup, roof: Roof, c: Constants) -> float:
    """bitsandbytes dequantises every 4-bit weight before each matmul that uses it: packed weight and constants
    read, compute-dtype copy written (bytes per use; not per token)."""
    if setup.method != "qlora":
        return 0.0
    params = sum(lin.weight_params for lin in fl.active_linears_routed(m) if lin.module)
    return memory_time(roof, c, params * (four_bit_bytes_per_param(setup.double_quant) + setup.compute_bytes))


def layer_pass(m: ModelSpec, setup: Setup, roof: Roof, c: Constants, batch: int, seq: int,
               backward: bool, lora: bool = True) -> Pass:
    """One decoder layer's forward (backward=False) or backward over `batch` x `seq` tokens."""
    tokens = batch * seq
    trained = setup.method == "full"
    s = setup if lora else setup.with_(method="full")  # a reference forward with the adapter disabled
    mat = _linears_time(m, setup, roof, c, tokens, trained, backward)
    if lora and setup.method != "full":
        mat += _lora_time(m, setup, roof, c, tokens, backward)
    mat += _dequant_time(m, setup, roof, c)
    a = setup.compute_bytes
    causal = t.attention_kernel(m, setup) != "eager"
    aflops = fl.attention_flops(m, batch, seq, causal)
    if causal:
        io = tokens * (2 * m.q_width + 2 * m.kv_width) * a
        attn = attention_time(roof, c, aflops * (fl.FLASH_BACKWARD_RATIO if backward else 1), io * (2 if backward else 1))
    else:  # eager: S x S scores written, fp32 softmax read and written, cast, read by P·V
        keys = min(seq, m.sliding_window) if m.sliding_window else seq
        scores = batch * m.num_heads * seq * keys * (a + 4 + 4 + a + a)
        attn = max(aflops * (2 if backward else 1) / (roof.peak_flops * c.matmul_efficiency),
                   memory_time(roof, c, scores * (BACKWARD_ELEMENTWISE if backward else 1)))
    elem = tokens * layer_elementwise_bytes(m, setup)
    if lora and setup.method != "full":
        elem += tokens * lora_elementwise_bytes(m, setup)
    elem = memory_time(roof, c, elem * (BACKWARD_ELEMENTWISE if backward else 1))
    kernels = layer_kernels(m, setup if lora else s) * (BACKWARD_KERNELS if backward else 1)
    return Pass(mat, attn, elem, kernels)


def _bounded(p: Pass, c: Constants, layers: int) -> tuple[float, float]:
    """(GPU time, launch time) of `layers` identical passes: the GPU waits on the CPU when launching is slower."""
    gpu, launch = layers * p.gpu(), layers * dispatch_time(c, p.kernels)
    return gpu, launch


# ------------------------------------------------------------------------------------------------ a micro-batch
def _head_time(m: ModelSpec, setup: Setup, roof: Roof, c: Constants, tokens: int, scored: int,
               backward: bool, vocab: int | None = None) -> float:
    """The output head and the loss over `scored` tokens: the logits matmul (and its backward: input gradient,
    weight gradient when trained) and the loss's elementwise bytes per logit."""
    v = m.vocab_size if vocab is None else vocab
    a = setup.compute_bytes
    h = m.hidden_size
    fp32 = setup.precision == "fp32"
    flops = 2.0 * scored * h * v
    nbytes = (scored * h + h * v + scored * v) * a
    one = matmul_time(roof, c, flops, scored, nbytes, fp32)
    passes = 1 + ((2 if setup.method == "full" else 1) if backward else 0)
    # the HF loss materialises fp32 logits; TRL's fused head and the stacks' chunked losses work in tiles
    per_logit = (FULL_LOSS_BYTES + 3 * a) if setup.loss == "full" else 4 * a
    loss = memory_time(roof, c, scored * v * per_logit * (1 if backward else 0.5)) if v > 1 else 0.0
    norm = memory_time(roof, c, tokens * norm_bytes(m, setup, h) * (1 + (BACKWARD_ELEMENTWISE if backward else 0)))
    return one * passes + loss + norm


def train_micro_batch(m: ModelSpec, setup: Setup, roof: Roof, c: Constants, batch: int, seq: int,
                      scored: int | None = None, vocab: int | None = None) -> dict[str, tuple[float, str]]:
    """Forward and backward of one micro-batch of `batch` x `seq` tokens, by term: {name: (seconds, bound)}."""
    L = m.num_layers
    tokens = batch * seq
    scored = tokens if scored is None else scored
    fwd = layer_pass(m, setup, roof, c, batch, seq, backward=False)
    bwd = layer_pass(m, setup, roof, c, batch, seq, backward=True)
    passes = [("forward", fwd), ("backward", bwd)]
    if setup.checkpointing:
        passes.append(("checkpoint recompute", fwd))
    out: dict[str, tuple[float, str]] = {}
    launch_total = 0.0
    for name, p in passes:
        gpu, launch = _bounded(p, c, L)
        launch_total += launch
        out[f"{name}: matmuls"] = (L * p.matmul, "compute")
        out[f"{name}: attention"] = (L * p.attention, "compute")
        out[f"{name}: elementwise"] = (L * p.elementwise, "memory")
    head = _head_time(m, setup, roof, c, tokens, scored, True, vocab) if vocab != 0 else 0.0
    out["LM head and loss"] = (head, "compute")
    launch_total += dispatch_time(c, HEAD_KERNELS * (1 + BACKWARD_KERNELS))
    gpu_total = sum(s for s, _ in out.values())
    out["kernel launch stalls"] = (max(0.0, launch_total - gpu_total), "launch")
    out.update(_autocast_casts(m, setup, roof, c))
    return out


def forward_only(m: ModelSpec, setup: Setup, roof: Roof, c: Constants, batch: int, seq: int, lora: bool = True,
                 scored: int | None = None, vocab: int | None = None) -> float:
    """A no-grad forward (reference model, reward/value scoring, a prefill): layers, head, launch floor."""
    p = layer_pass(m, setup, roof, c, batch, seq, backward=False, lora=lora)
    gpu, launch = _bounded(p, c, m.num_layers)
    tokens = batch * seq
    head = 0.0 if vocab == 0 else _head_time(m, setup, roof, c, tokens, tokens if scored is None else scored, False, vocab)
    return max(gpu + head, launch + dispatch_time(c, HEAD_KERNELS))


def _autocast_casts(m: ModelSpec, setup: Setup, roof: Roof, c: Constants) -> dict[str, tuple[float, str]]:
    """Mixed precision keeps fp32 weights: autocast casts each to the compute dtype on every forward (recompute
    included), reading 4 and writing 2 bytes per parameter."""
    if not setup.mixed and not (setup.method == "qlora" and setup.kbit_upcast):
        return {}
    pc = count_params(m)
    params = pc.total if setup.mixed else pc.non_linear - pc.embedding  # QLoRA: the fp32-upcast head and norms
    uses = 2 if setup.checkpointing else 1
    return {"autocast weight casts": (memory_time(roof, c, params * (4 + setup.compute_bytes) * uses), "memory")}


# ------------------------------------------------------------------------------------------------ the step
OPTIMIZER_BYTES = {
    # Bytes moved per trainable parameter by one optimizer step, per byte of the parameter's dtype (p) and
    # independent of it (fixed). torch.optim.AdamW foreach (the HF Trainer's adamw_torch): lerp of exp_avg (3 p),
    # mul and addcmul of exp_avg_sq (5 p), sqrt, divide and add eps into the denominator (6 p), addcdiv into the
    # parameter (4 p), decoupled weight decay (2 p): 20 p. bitsandbytes 8-bit AdamW is one fused kernel: parameter
    # and gradient read, parameter written (3 p), two uint8 states read and written (4).
    "adamw": (20, 0),
    "adamw8bit": (3, 4),
    "paged_adamw8bit": (3, 4),
    "adafactor": (14, 0),  # factored second moment: row/column reductions and the update pass over the gradient
    "sgd": (3, 0),
    "sgd_momentum": (6, 0),
    "lion": (8, 0),
}
CLIP_BYTES = 3  # gradient clipping (HF Trainer max_grad_norm 1.0): the norm reads each gradient, the scaling r/w


def optimizer_time(m: ModelSpec, setup: Setup, roof: Roof, c: Constants) -> float:
    n = t.trainable_params(m, setup)
    if setup.parallel in ("zero1", "zero2", "zero3", "fsdp", "fsdp_grad_op", "fsdp_hybrid"):
        n /= setup.gpus if setup.parallel == "fsdp_hybrid" else setup.world_size
    p = t.trainable_bytes_per_param(setup)
    per_p, fixed = OPTIMIZER_BYTES[setup.optimizer]
    return memory_time(roof, c, n * (per_p * p + fixed + CLIP_BYTES * p))


def _ring(size: float, n: int) -> float:
    """Bytes each rank sends in a ring all-gather or reduce-scatter of `size` bytes over `n` ranks."""
    return size * (n - 1) / n if n > 1 else 0.0


def comm_bytes(m: ModelSpec, setup: Setup) -> dict[str, float]:
    """Bytes each GPU sends per optimizer step, by collective. DDP and ZeRO-1/2 reduce the gradients once per
    optimizer step (accumulation runs under no_sync) and ZeRO re-gathers the updated parameters; ZeRO-3 / FSDP
    FULL_SHARD gather every weight in forward and again in backward and reduce-scatter the gradients, on every
    micro-batch; SHARD_GRAD_OP gathers once per micro-batch and keeps the weights through backward. Weights move at
    their storage size (QLoRA's packed 4-bit), gradients at the trainable dtype."""
    n = setup.world_size
    if n <= 1 or setup.parallel == "none":
        return {}
    grads = t.trainable_params(m, setup) * t.trainable_bytes_per_param(setup)
    weights = t.base_weights(m, setup) + (t.adapter_weights(m, setup) if setup.method != "full" else 0)
    ga = setup.grad_accum
    if setup.parallel.startswith("fsdp") and setup.method != "full":
        # FSDP (use_orig_params=True, as accelerate runs PEFT) keeps one flat gradient per wrapped unit, frozen
        # weights included, and reduce-scatters all of it: "the gradient memory usage will be higher than expected
        # (namely, equivalent to not freezing those parameters)" (torch.distributed.fsdp FullyShardedDataParallel
        # docstring, use_orig_params).
        grads = max(grads, weights)
    if setup.parallel == "ddp":
        return {"gradient all-reduce": 2 * _ring(grads, n)}
    if setup.parallel in ("zero1", "zero2"):
        return {"gradient reduce-scatter": _ring(grads, n), "parameter all-gather": _ring(grads, n)}
    if setup.parallel == "fsdp_grad_op":
        return {"weight all-gather": ga * _ring(weights, n), "gradient reduce-scatter": ga * _ring(grads, n)}
    if setup.parallel == "fsdp_hybrid":
        g = setup.gpus
        return {"weight all-gather (in node)": 2 * ga * _ring(weights, g), "gradient reduce-scatter (in node)": ga * _ring(grads, g),
                "gradient all-reduce (across nodes)": 2 * _ring(grads / g, setup.nodes)}
    return {"weight all-gather": 2 * ga * _ring(weights, n), "gradient reduce-scatter": ga * _ring(grads, n)}


def link_bytes_per_s(gpu: Gpu, setup: Setup, collective: str) -> tuple[float, str]:
    """The bandwidth a collective runs at: the slowest link of the ring (the network once it spans nodes)."""
    intra = (gpu.interconnect_gbs or gpu.pcie_gbs or 16.0) * 1e9
    if setup.nodes > 1 and "in node" not in collective:
        return min(intra, INTER_NODE_GBS * 1e9), "network"
    return intra, gpu.interconnect


def offload_terms(m: ModelSpec, setup: Setup, gpu: Gpu, c: Constants) -> dict[str, tuple[float, str]]:
    """CPU offload (ZeRO-Offload / FSDP cpu_offload): gradients down and updated parameters up over PCIe each step,
    the Adam step on the CPU; parameter offload also streams every weight up in forward and backward."""
    out: dict[str, tuple[float, str]] = {}
    pcie = (gpu.pcie_gbs or 16.0) * 1e9 * c.bandwidth_efficiency
    shards = setup.world_size if setup.parallel != "none" else 1
    n = t.trainable_params(m, setup) / shards
    p = t.trainable_bytes_per_param(setup)
    if setup.offload_optimizer:
        out["optimizer offload: PCIe"] = (n * (p + p) / pcie, "pcie")
        out["optimizer offload: CPU Adam"] = (n / CPU_ADAM_PARAMS_PER_S, "cpu")
    if setup.offload_params:
        weights = t.base_weights(m, setup) / shards
        out["parameter offload: PCIe"] = (2 * setup.grad_accum * weights / pcie, "pcie")
    return out


def _sft_like(m: ModelSpec, setup: Setup, gpu: Gpu, c: Constants, batch: int, seq: int, scored: int | None = None,
              vocab: int | None = None) -> tuple[dict[str, tuple[float, str]], float]:
    """grad_accum micro-batches of forward + backward: {term: (seconds per step, bound)}, FLOPs per step."""
    roof = roof_for(gpu, setup)
    one = train_micro_batch(m, setup, roof, c, batch, seq, scored, vocab)
    terms = {k: (v * setup.grad_accum, b) for k, (v, b) in one.items()}
    f = fl.step_flops(m, setup, batch, seq, scored, causal=t.attention_kernel(m, setup) != "eager")
    return terms, f.total * setup.grad_accum


def _generation(m: ModelSpec, setup: Setup, roof: Roof, c: Constants, sequences: int, prompt: int,
                response: int, chunk: int | None = None) -> dict[str, tuple[float, str]]:
    """`generate` with a KV cache: the prefill of the prompts (compute-bound, a forward) and `response` decoding
    steps, each reading every weight and the cache once (bandwidth-bound) and launching a forward's kernels."""
    chunk = chunk or sequences
    rounds = -(-sequences // chunk)
    prefill = rounds * forward_only(m, setup, roof, c, chunk, prompt, vocab=m.vocab_size, scored=chunk)
    pc = count_params(m)
    weights = t.base_weights(m, setup) if setup.method != "qlora" else \
        pc.linear * (four_bit_bytes_per_param(setup.double_quant) + setup.compute_bytes) + pc.non_linear * setup.compute_bytes
    if m.is_moe:  # a decoding batch touches up to all experts; with few sequences only the routed ones
        frac = min(1.0, chunk * m.experts_per_token / m.num_experts)
        weights *= (pc.active + frac * (pc.total - pc.active)) / pc.total
    kv_per_token = 2 * m.num_layers * m.kv_width * setup.compute_bytes
    mean_ctx = prompt + response / 2
    per_step_bytes = weights + chunk * mean_ctx * kv_per_token
    per_step_flops = 2.0 * pc.active * chunk + m.num_layers * 4.0 * chunk * mean_ctx * m.q_width
    kernels = m.num_layers * layer_kernels(m, setup) + HEAD_KERNELS
    step = max(memory_time(roof, c, per_step_bytes), per_step_flops / (roof.peak_flops * c.matmul_efficiency),
               dispatch_time(c, kernels))
    return {"generation: prefill": (prefill, "compute"), "generation: decode": (rounds * response * step, "memory")}


def _for_stack(setup: Setup) -> Setup:
    """The loss head the set-up's stack really runs (estimators/stacks.py, as estimate() resolves it)."""
    try:
        from .stacks import for_stack
    except ImportError:  # an older tree without stacks: the set-up as given
        return setup
    return for_stack(setup)


def step_time(model: ModelSpec, setup: Setup, gpu: Gpu, constants: Constants = DEFAULT) -> StepTime:
    """One optimizer step of `setup` on `model`, on one GPU of type `gpu`, term by term."""
    setup = t.for_model(model, _for_stack(setup.validated()))
    m, c = model, constants
    roof = roof_for(gpu, setup)
    seq = setup.seq_len
    ga = setup.grad_accum
    notes: dict[str, str] = {}
    if setup.train == "sft":
        terms, flops = _sft_like(m, setup, gpu, c, setup.micro_batch, seq)
        tokens, sequences = setup.micro_batch * seq * ga, setup.micro_batch * ga
    elif setup.train == "reward":  # chosen and rejected in one forward; a score head instead of the vocabulary
        terms, flops = _sft_like(m, setup, gpu, c, 2 * setup.micro_batch, seq, vocab=1)
        tokens, sequences = 2 * setup.micro_batch * seq * ga, setup.micro_batch * ga
    elif setup.train == "dpo":
        terms, flops = _sft_like(m, setup, gpu, c, 2 * setup.micro_batch, seq)
        if setup.ref_model != "none":
            ref = forward_only(m, setup, roof, c, 2 * setup.micro_batch, seq, lora=False)
            terms["reference forward"] = (ga * ref, "compute")
            if setup.ref_model == "precomputed":
                notes["reference forward"] = "precomputed in a pre-pass over the data: the same forward, once per example"
        tokens, sequences = 2 * setup.micro_batch * seq * ga, setup.micro_batch * ga
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
        value, vflops = _sft_like(m, setup.with_(method="full", grad_ckpt=False), gpu, c, setup.micro_batch, seq, vocab=1)
        terms = {f"policy {k}": (v * PPO_EPOCHS, b) for k, (v, b) in policy.items()}
        terms["value model train"] = (PPO_EPOCHS * sum(v for v, _ in value.values()), "compute")
        flops = PPO_EPOCHS * (flops + vflops)
        terms.update(_generation(m, setup, roof, c, batch, prompt, resp, chunk=setup.micro_batch))
        frozen = setup.with_(method="full", grad_ckpt=False) if setup.method == "full" else setup
        scoring = forward_only(m, frozen, roof, c, setup.micro_batch, seq, lora=False)
        scoring_value = forward_only(m, frozen, roof, c, setup.micro_batch, seq, lora=False, vocab=1)
        terms["reference, reward and value scoring"] = (ga * (2 * scoring + scoring_value), "compute")
        terms["policy log-probs of the rollout"] = (ga * forward_only(m, setup, roof, c, setup.micro_batch, seq), "compute")
        tokens, sequences = batch * seq, batch
    else:  # pragma: no cover - Setup.validated() rejects other kinds
        raise EstimateError(f"no time model for training kind '{setup.train}'")
    terms["optimizer step"] = (optimizer_time(m, setup, roof, c), "memory")
    for name, nbytes in comm_bytes(m, setup).items():
        bw, link = link_bytes_per_s(gpu, setup, name)
        terms[name] = (nbytes / (bw * c.link_efficiency), "link")
        notes[name] = f"{nbytes / 1e9:.2f} GB over {link}"
    terms.update(offload_terms(m, setup, gpu, c))
    out = tuple(TimeTerm(k, v, b, notes.get(k, "")) for k, (v, b) in terms.items() if v > 0)
    return StepTime(gpu=gpu, setup=setup, terms=out, tokens=int(tokens), sequences=int(sequences), flops=flops)
