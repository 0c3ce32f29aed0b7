"""The time DoRA adds to a decoder layer's pass (peft `LoraConfig(use_dora=True)`), on top of the LoRA branch that
estimators/time_layer.py prices. Read in peft 0.21 tuners/lora/dora.py DoraLinearLayer.forward (lines 128-160),
the same ops the memory model prices (estimators/option_terms.py `_dora_transient_one`).

On every forward (and every checkpoint recompute) each DoRA linear rebuilds its full-rank update and the row norms of
the updated weight; nothing is cached in training (`cache_decorator` caches only in eval mode):
- `torch.eye(in)` in the adapters' dtype, run through lora_A and lora_B: an in x in identity written and read (under
  autocast also cast to the compute dtype) and the out x in product written;
- the product cast to x's dtype, the frozen weight dequantised (QLoRA) and cast to x's dtype;
- `weight + scaling * lora_weight` and `torch.linalg.norm(..., dim=1)`: three more passes over out x in.
These are weight-sized, not token-sized: at small micro-batches they are a large share of the step. The norm is
detached, so backward adds no weight-sized work; per token, the output combine `(m - 1) * base + m * lora * scaling`
and its gradient. With lora_dropout > 0 peft runs the base matmul again on dropout(x) (variants.py sets
`base_result = None`), whose input gradient backward also computes.
Checked against PEFT's MetaMathQA runs: Llama-3.2-3B rank 32 on q/v, DoRA against plain LoRA (rows t0373, t0374).
"""

from __future__ import annotations

from . import terms as t
from .dtypes import four_bit_bytes_per_param
from .model import ModelSpec
from .option_terms import dora_linears, dora_weight_bytes, dora_x_bytes
from .roofline import Constants, Roof, matmul_time, memory_time
from .setup import Setup

ADAPTER_BYTES = 4  # the adapters' dtype: fp32 (peft's autocast_adapter_dtype, as the memory model prices them)
# Kernels per DoRA linear in forward: eye, lora_A, lora_B, the transpose's cast, the weight's cast, scaling, the add,
# the norm and its cast, the division by the norm, and the three ops of the output combine; backward: the combine's.
DORA_KERNELS = 12
DORA_BACKWARD_KERNELS = 8


def weight_norm_bytes(m: ModelSpec, setup: Setup) -> float:
    """Bytes one decoder layer's DoRA linears move per forward to rebuild the update and its row norms."""
    a = setup.compute_bytes
    autocast = t.uses_autocast(setup)
    total = 0.0
    for lin in dora_linears(m, setup):
        w, eye = lin.in_features * lin.out_features, lin.in_features**2
        x = dora_x_bytes(m, setup, lin)
        identity = ADAPTER_BYTES * eye + ((ADAPTER_BYTES + a) * eye + a * eye if autocast else ADAPTER_BYTES * eye)
        product = a if autocast else ADAPTER_BYTES  # lora_B's output dtype
        cast_update = (product + x) * w if product != x else 0
        # QLoRA: the packed 4-bit weight read and its compute-dtype copy written (as time_layer._dequant_time)
        dequant = (four_bit_bytes_per_param(setup.double_quant) + a) * w if setup.adaptation == "qlora" else 0.0
        stored = dora_weight_bytes(setup)
        cast_weight = (stored + x) * w if stored != x else 0
        norm_passes = 2 * x * w + 3 * x * w + x * w  # scaling * update (r, w); weight + that (r, r, w); the norm (r)
        total += lin.count * (identity + product * w + cast_update + dequant + cast_weight + norm_passes)
    return total


def combine_bytes_per_token(m: ModelSpec, setup: Setup) -> float:
    """Bytes per token of the output combine in forward (backward is priced at BACKWARD_ELEMENTWISE times this), per
    output feature: `(m - 1) * base_result` reads the base output (compute dtype) and writes in x's dtype (the fp32
    magnitude promotes it), `m * lora_result` reads and writes, and the sum reads both and writes one. The LoRA
    branch's own scaling and its add to the layer output are LoRA's (time_bytes.lora_elementwise_bytes)."""
    a = setup.compute_bytes
    return sum((a + 6 * dora_x_bytes(m, setup, lin)) * lin.out_features * lin.count for lin in dora_linears(m, setup))


def dropout_rerun_time(m: ModelSpec, setup: Setup, roof: Roof, c: Constants, tokens: int) -> float:
    """lora_dropout > 0: the base matmul again on dropout(x) (and in backward its input gradient; the weight is
    frozen). Outside autocast it runs in x's fp32."""
    if setup.lora_dropout <= 0:
        return 0.0
    total = 0.0
    for lin in dora_linears(m, setup):
        x = dora_x_bytes(m, setup, lin)
        flops = 2.0 * tokens * lin.in_features * lin.out_features * lin.count
        nbytes = lin.count * (tokens * (lin.in_features + lin.out_features) + lin.in_features * lin.out_features) * x
        total += matmul_time(roof, c, flops, tokens, nbytes, fp32=not t.uses_autocast(setup))  # autocast: bf16/fp16
    return total


def dora_pass(
    m: ModelSpec, setup: Setup, roof: Roof, c: Constants, tokens: int, backward: bool, backward_elementwise: float
) -> tuple[float, float, int]:
    """(matmul seconds, elementwise seconds, kernels) DoRA adds to one layer's forward or backward."""
    if not setup.dora or setup.adaptation == "full":
        return 0.0, 0.0, 0
    n = sum(lin.count for lin in dora_linears(m, setup))
    mat = dropout_rerun_time(m, setup, roof, c, tokens)  # forward: the matmul; backward: its input gradient
    combine = tokens * combine_bytes_per_token(m, setup)
    if backward:
        return mat, memory_time(roof, c, combine * backward_elementwise), DORA_BACKWARD_KERNELS * n
    return mat, memory_time(roof, c, weight_norm_bytes(m, setup) + combine), DORA_KERNELS * n
