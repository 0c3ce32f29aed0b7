"""The time of one decoder layer's pass and of one micro-batch's forward and backward, term by term (pure Python).

Bytes moved are counted from the Hugging Face modelling code the memory model reads (estimators/terms.py): every
unfused elementwise op reads its inputs and writes its output once. The per-op counts are in the functions below;
backward elementwise work is taken as twice the forward's (gradients read the saved input and the incoming
gradient and write one gradient per input). A decoder layer is also bounded below by the CPU time to launch its
kernels (eager PyTorch), which is what small micro-batches hit. estimators/timing.py sums these into a step.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import flops as fl
from . import terms as t
from .adapter_prompt_terms import adapted_layers
from .dtypes import four_bit_bytes_per_param
from .model import ModelSpec
from .roofline import Constants, Roof, attention_time, dispatch_time, matmul_time, memory_time
from .setup import Setup, save_module_names
from .time_adapter_prompt import adapter_pass, backward_layers
from .time_dora import dora_pass
from .time_step_terms import autocast_casts, fsdp_units

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


# ------------------------------------------------------------------------------------------------ bytes moved
def norm_bytes(m: ModelSpec, setup: Setup, width: int, stream: int | None = None) -> float:
    """Bytes one pre-norm moves per token in forward, reading a residual stream of `stream` bytes per element.
    HF RMSNorm: cast to fp32 (r in, 4 out; skipped when the stream is already fp32), square, mean, scale (4 in /
    4 out each), cast back (4 in, a out), weight (a in, a out): (r + 28 + 3a) per element. LayerNorm is one fused
    kernel: r in, its output out (fp32 under CUDA autocast)."""
    r = t.residual_bytes(setup) if stream is None else stream
    a = setup.compute_bytes
    if m.norm == "layer":
        return width * (r + t.norm_out_bytes(m, setup))
    return width * (r + 24 + 3 * a + (4 if r != 4 else 0))


@dataclass(frozen=True)
class Dtypes:
    """Bytes per element of the tensors a decoder layer passes along, as the memory model reads them
    (estimators/terms.py): what the pre-norms hand the projections, what the projections and the MLP return, and
    the residual stream the layer adds into. QLoRA's Linear4bit returns its input's dtype, so an fp32 norm output
    (LayerNorm under autocast, or norm weights upcast to fp32) keeps q/k/v, the MLP and its output in fp32, and the
    MLP's fp32 output turns the residual stream fp32."""

    norm_out: int
    proj_out: int
    mlp_out: int
    stream: int

    @classmethod
    def of(cls, m: ModelSpec, setup: Setup) -> Dtypes:
        norm_out = t.norm_out_bytes(m, setup)
        proj_out = t.base_out_bytes(setup, norm_out)
        mlp_out = t.base_out_bytes(setup, proj_out)
        return cls(norm_out, proj_out, mlp_out, max(t.residual_bytes(setup), mlp_out))


def layer_casts(m: ModelSpec, setup: Setup, d: Dtypes) -> list[tuple[int, int]]:
    """The dtype casts around one layer's matmuls, as (source bytes per element, elements per token), one entry per
    cast kernel. Under autocast every consumer casts an input in another dtype itself (autocast caches only leaf
    weights; Linear4bit casts x to its compute dtype); Linear4bit casts its output back to the input's dtype
    (`.to(inp_dtype)`); the flash path casts fp32 q, k, v to the compute dtype before the kernel (transformers'
    "silently casted in float32" branch); down_proj casts an fp32 MLP product."""
    h, inter = m.hidden_size, _mlp_width(m)
    qkv = m.q_width + 2 * m.kv_width
    up_out = inter * (2 if m.gated_mlp else 1)
    inputs = (1 if m.fused_qkv else 3) + (1 if (m.fused_gate_up or not m.gated_mlp) else 2)
    casts = [(d.norm_out, h)] * inputs
    if setup.adaptation == "qlora":
        casts += [(d.proj_out, qkv + up_out), (d.mlp_out, h)]
    casts += [(d.proj_out, qkv), (d.proj_out, inter)]
    return [(src, width) for src, width in casts if src != setup.compute_bytes]


def linear_cast_bytes(m: ModelSpec, setup: Setup, d: Dtypes) -> float:
    """Bytes per token of layer_casts: each reads its source and writes the compute dtype."""
    return sum(width * (src + setup.compute_bytes) for src, width in layer_casts(m, setup, d))


def _mlp_width(m: ModelSpec) -> int:
    return m.intermediate_size if not m.is_moe else m.expert_intermediate * m.experts_per_token


def layer_elementwise_bytes(m: ModelSpec, setup: Setup) -> float:
    """Bytes per token of one decoder layer's unfused elementwise ops in forward (matmuls and attention apart),
    each in the dtype its tensor has (Dtypes), with the casts between them."""
    a = setup.compute_bytes
    d = Dtypes.of(m, setup)
    h = m.hidden_size
    norms = m.norms_per_layer * norm_bytes(m, setup, h, d.stream)
    if m.qk_norm:
        norms += norm_bytes(m, setup, m.q_width + m.kv_width, d.stream)
    residual = 2 * 3 * h * d.stream  # two residual adds: read both, write one
    rope = 0 if m.learned_positions else 10 * d.proj_out * (m.q_width + m.kv_width)  # q*cos, rotate_half, *sin, add
    act = (5 if m.gated_mlp else 2) * d.proj_out * _mlp_width(m)  # act(gate) r/w, * up r r w; GELU r/w
    moe = 0.0
    if m.is_moe:  # router softmax/top-k and the token permutation in and out of the experts (read and write)
        moe = 4 * a * h * m.experts_per_token + 8 * m.num_experts
    return norms + residual + rope + act + moe + linear_cast_bytes(m, setup, d)


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
    """Kernels one decoder layer launches in forward (LoRA branches, 4-bit dequantisation and dtype casts included)."""
    n = LAYER_KERNELS + (4 if m.qk_norm else 0) + (6 + 4 * m.experts_per_token if m.is_moe else 0)
    n += LORA_KERNELS * sum(
        1 if t.wrapped_parameter(lin) else lin.count
        for lin in t.lora_linears(m, setup)
        if not (lin.group == "expert" and not t.wrapped_parameter(lin))
    ) + LORA_KERNELS * m.experts_per_token * sum(1 for lin in t.lora_linears(m, setup) if lin.group == "expert" and not t.wrapped_parameter(lin))
    if setup.adaptation == "qlora":
        n += DEQUANT_KERNELS * sum(1 for lin in fl.active_linears(m) if lin.module)
    return n + len(layer_casts(m, setup, Dtypes.of(m, setup)))


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

    def plus(self, extra: tuple[float, float, float], share: float = 1.0) -> "Pass":
        """This pass with an option's (matmul s, elementwise s, kernels) added, `share` of it per layer."""
        mat, elem, kernels = extra
        return Pass(self.matmul + share * mat, self.attention, self.elementwise + share * elem, self.kernels + share * kernels)


def _weight_read_bytes(m: ModelSpec, setup: Setup, lin) -> float:
    """Bytes of one linear's weight a matmul reads: the compute-dtype copy (for QLoRA the dequantised one)."""
    return lin.in_features * lin.out_features * lin.count * setup.compute_bytes


def _linears_time(m: ModelSpec, setup: Setup, roof: Roof, c: Constants, tokens: int, weight_grad: bool, backward: bool) -> float:
    a = setup.compute_bytes
    fp32 = setup.precision == "fp32"
    total = 0.0
    for mm, lin in zip(fl.linear_matmuls(m, tokens), fl.active_linears_routed(m), strict=False):
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
    if setup.adaptation != "qlora":
        return 0.0
    params = sum(lin.weight_params for lin in fl.active_linears_routed(m) if lin.module)
    return memory_time(roof, c, params * (four_bit_bytes_per_param(setup.double_quant) + setup.compute_bytes))


def layer_pass(m: ModelSpec, setup: Setup, roof: Roof, c: Constants, batch: int, seq: int, backward: bool, lora: bool = True) -> Pass:
    """One decoder layer's forward (backward=False) or backward over `batch` x `seq` tokens."""
    tokens = batch * seq
    trained = setup.adaptation == "full"
    s = setup if lora else setup.without_adapter()  # a reference forward with the adapter disabled
    mat = _linears_time(m, setup, roof, c, tokens, trained, backward)
    if lora and setup.adaptation != "full":
        mat += _lora_time(m, setup, roof, c, tokens, backward)
    mat += _dequant_time(m, setup, roof, c)
    a = setup.compute_bytes
    aflops = fl.attention_flops(m, batch, seq, t.causal_attention(m, setup))
    if t.attention_kernel(m, setup) != "eager":
        io = tokens * (2 * m.q_width + 2 * m.kv_width) * a
        attn = attention_time(roof, c, aflops * (fl.FLASH_BACKWARD_RATIO if backward else 1), io * (2 if backward else 1))
    else:  # eager: S x S scores written, fp32 softmax read and written, cast, read by P·V
        keys = min(seq, m.sliding_window) if m.sliding_window else seq
        scores = batch * m.num_heads * seq * keys * (a + 4 + 4 + a + a)
        attn = max(
            aflops * (2 if backward else 1) / (roof.peak_flops * c.matmul_efficiency),
            memory_time(roof, c, scores * (BACKWARD_ELEMENTWISE if backward else 1)),
        )
    elem = tokens * layer_elementwise_bytes(m, setup)
    if lora and setup.adaptation != "full":
        elem += tokens * lora_elementwise_bytes(m, setup)
    elem = memory_time(roof, c, elem * (BACKWARD_ELEMENTWISE if backward else 1))
    kernels = layer_kernels(m, setup if lora else s) * (BACKWARD_KERNELS if backward else 1)
    return Pass(mat, attn, elem, kernels).plus(dora_pass(m, s, roof, c, tokens, backward, BACKWARD_ELEMENTWISE))  # 0 without DoRA


def _bounded(p: Pass, c: Constants, layers: int) -> tuple[float, float]:
    """(GPU time, launch time) of `layers` identical passes: the GPU waits on the CPU when launching is slower."""
    gpu, launch = layers * p.gpu(), layers * dispatch_time(c, p.kernels)
    return gpu, launch


# ------------------------------------------------------------------------------------------------ a micro-batch
def _head_time(m: ModelSpec, setup: Setup, roof: Roof, c: Constants, tokens: int, scored: int, backward: bool, vocab: int | None = None) -> float:
    """The output head and the loss over `scored` tokens: the logits matmul (and its backward: input gradient,
    weight gradient when the head trains: full fine-tuning, or its modules_to_save copy) and the loss's elementwise
    bytes per logit."""
    v = m.vocab_size if vocab is None else vocab
    a = setup.compute_bytes
    h = m.hidden_size
    fp32 = setup.precision == "fp32"
    flops = 2.0 * scored * h * v
    nbytes = (scored * h + h * v + scored * v) * a
    one = matmul_time(roof, c, flops, scored, nbytes, fp32)
    trained = setup.adaptation == "full" or "lm_head" in save_module_names(setup)  # modules_to_save trains a copy
    passes = 1 + ((2 if trained else 1) if backward else 0)
    # the HF loss materialises fp32 logits; TRL's fused head and the stacks' chunked losses work in tiles
    per_logit = (FULL_LOSS_BYTES + 3 * a) if setup.loss == "full" else 4 * a
    loss = memory_time(roof, c, scored * v * per_logit * (1 if backward else 0.5)) if v > 1 else 0.0
    norm = memory_time(roof, c, tokens * norm_bytes(m, setup, h) * (1 + (BACKWARD_ELEMENTWISE if backward else 0)))
    return one * passes + loss + norm


def _layer_passes(m: ModelSpec, setup: Setup, roof: Roof, c: Constants, batch: int, seq: int) -> tuple[Pass, Pass, int]:
    """A layer's forward and backward (the mean over the layers) and how many layers backward runs over: all, or for
    LLaMA-Adapter the frozen base with the adapter's work in its layers (estimators/time_adapter_prompt.py)."""
    if not setup.llama_adapter:
        return layer_pass(m, setup, roof, c, batch, seq, False), layer_pass(m, setup, roof, c, batch, seq, True), m.num_layers
    n, back = adapted_layers(m, setup), backward_layers(m, setup)
    fwd = layer_pass(m, setup, roof, c, batch, seq, False, lora=False).plus(adapter_pass(m, setup, roof, c, batch, seq, False), n / m.num_layers)
    bwd = layer_pass(m, setup, roof, c, batch, seq, True, lora=False).plus(adapter_pass(m, setup, roof, c, batch, seq, True), n / back)
    return fwd, bwd, back


def train_micro_batch(
    m: ModelSpec, setup: Setup, roof: Roof, c: Constants, batch: int, seq: int, scored: int | None = None, vocab: int | None = None
) -> dict[str, tuple[float, str]]:
    """Forward and backward of one micro-batch of `batch` x `seq` tokens, by term: {name: (seconds, bound)}."""
    L = m.num_layers
    tokens = batch * seq
    scored = tokens if scored is None else scored
    fwd, bwd, back = _layer_passes(m, setup, roof, c, batch, seq)
    passes = [("forward", fwd, L), ("backward", bwd, back)]
    if setup.checkpointing:
        passes.append(("checkpoint recompute", fwd, L))
    out: dict[str, tuple[float, str]] = {}
    launch_total = 0.0
    for name, p, layers in passes:
        gpu, launch = _bounded(p, c, layers)
        launch_total += launch
        out[f"{name}: matmuls"] = (layers * p.matmul, "compute")
        out[f"{name}: attention"] = (layers * p.attention, "compute")
        out[f"{name}: elementwise"] = (layers * p.elementwise, "memory")
    head = _head_time(m, setup, roof, c, tokens, scored, True, vocab) if vocab != 0 else 0.0
    out["LM head and loss"] = (head, "compute")
    launch_total += dispatch_time(c, HEAD_KERNELS * (1 + BACKWARD_KERNELS))
    launch_total += fsdp_units(m, setup) * len(passes) * c.fsdp_unit_s  # FSDP's per-unit hooks run on the host too
    gpu_total = sum(s for s, _ in out.values())
    out["host-bound stalls (kernel launches, FSDP hooks)"] = (max(0.0, launch_total - gpu_total), "launch")
    out.update(autocast_casts(m, setup, roof, c))
    return out


def forward_only(
    m: ModelSpec, setup: Setup, roof: Roof, c: Constants, batch: int, seq: int, lora: bool = True, scored: int | None = None, vocab: int | None = None
) -> float:
    """A no-grad forward (reference model, reward/value scoring, a prefill): layers, head, launch floor."""
    p = layer_pass(m, setup, roof, c, batch, seq, backward=False, lora=lora)
    gpu, launch = _bounded(p, c, m.num_layers)
    tokens = batch * seq
    head = 0.0 if vocab == 0 else _head_time(m, setup, roof, c, tokens, tokens if scored is None else scored, False, vocab)
    return max(gpu + head, launch + dispatch_time(c, HEAD_KERNELS) + fsdp_units(m, setup) * c.fsdp_unit_s)
