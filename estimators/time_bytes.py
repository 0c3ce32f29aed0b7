"""What one decoder layer's pass moves and launches, for the time model (estimators/time_layer.py): bytes per token
of its norms, casts and unfused elementwise ops (every op reads its inputs and writes its output once, dtypes as the
memory model reads them in estimators/terms.py), of the LoRA branches, and the kernels it launches."""

from __future__ import annotations

from dataclasses import dataclass

from . import flops as fl
from . import terms as t
from .model import ModelSpec
from .setup import Setup

# Kernels one decoder layer launches in forward, counted in transformers' Llama/Mistral modelling code: two RMSNorms
# (7 ops each: cast, pow, mean, add, rsqrt, mul, cast, weight mul), RoPE on q and k (10), seven linears and reshapes
# (10), the attention call (3), SiLU and the gate product (2), two residual adds (2).
LAYER_KERNELS = 41
LORA_KERNELS = 6  # per adapted linear: dropout, A, B, scaling, add, the fp32 cast of x (peft lora.Linear.forward)
DEQUANT_KERNELS = 1  # bitsandbytes dequantize_4bit before each matmul of a 4-bit weight


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
