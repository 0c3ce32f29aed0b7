"""CUDA semantics on CPU tensors: autocast op lists and the fused dropout kernel.

The trace runs on CPU (fake) tensors, where torch applies *CPU* autocast: matmuls are cast to the low-precision
dtype (with the same weight-cast cache CUDA autocast keeps), but ops that CUDA autocast runs in fp32 stay in
bf16/fp16 on CPU (TRACING.md, item 4). `CudaAutocastOps` is a TorchFunctionMode that, while CPU autocast is
enabled, applies the CUDA-only policies on top: the `fp32` list (inputs cast to fp32), the `fp32_set_opt_dtype`
list (softmax, log_softmax, sum, ... get dtype=float32) and the CUDA-only low-precision ops (einsum, mv, ...).
The lists are those of aten/src/ATen/autocast_mode.cpp (torch 2.x, `KERNEL_CUDA`), restricted to ops a
decoder-only language model can reach from Python.

Dropout: on CUDA, `dropout` in training runs the fused `native_dropout`, which saves a one-byte mask; on CPU it
runs `input * noise` with an input-sized noise tensor in the input's dtype, which `mul` saves (aten
native/Dropout.cpp, `is_fused_kernel_acceptable` is true for CUDA tensors only). The mode routes F.dropout to
`native_dropout`, whose CPU kernel saves the same bool mask.

`cuda_autocast(dtype)` enters both: real CPU autocast plus this mode, and makes `torch.is_autocast_enabled()`
(the no-argument / "cuda" form peft and transformers ask) answer with the CPU state, as it would on a GPU.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_map

LOW = (torch.float16, torch.bfloat16)

# CUDA autocast `fp32` policy (autocast_mode.cpp): every floating input is cast to float32.
FP32_OPS = (
    "acos",
    "asin",
    "cosh",
    "erfinv",
    "exp",
    "expm1",
    "log",
    "log10",
    "log2",
    "log1p",
    "reciprocal",
    "rsqrt",
    "sinh",
    "tan",
    "pow",
    "__pow__",
    "__rpow__",
    "softplus",
    "layer_norm",
    "group_norm",
    "norm",
    "frobenius_norm",
    "nuclear_norm",
    "cosine_similarity",
    "poisson_nll_loss",
    "cosine_embedding_loss",
    "nll_loss",
    "hinge_embedding_loss",
    "kl_div",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
    "mse_loss",
    "margin_ranking_loss",
    "multilabel_margin_loss",
    "soft_margin_loss",
    "triplet_margin_loss",
    "multi_margin_loss",
    "binary_cross_entropy_with_logits",
    "dist",
    "pdist",
    "cdist",
    "renorm",
    "logsumexp",
)
# CUDA autocast `fp32_set_opt_dtype` policy: run in fp32 unless the caller names an output dtype.
FP32_SET_DTYPE_OPS = ("prod", "softmax", "log_softmax", "cumprod", "cumsum", "sum", "vector_norm", "matrix_norm")
# CUDA autocast `lower_precision_fp` ops that CPU autocast does not list.
LOW_OPS = ("einsum", "mv", "addmv", "addr", "chain_matmul", "multi_dot")

_NAMESPACES = (torch, torch.Tensor, F, torch.special, torch.linalg)


def _collect(names) -> set:
    found = set()
    for ns in _NAMESPACES:
        for name in names:
            fn = getattr(ns, name, None)
            if fn is not None:
                found.add(fn)
    return found


_FP32 = _collect(FP32_OPS)
_SET_DTYPE = _collect(FP32_SET_DTYPE_OPS)
_LOW = _collect(LOW_OPS)
_CROSS_ENTROPY = {F.cross_entropy}


def _cast(dtype):
    def cast(x):
        if isinstance(x, torch.Tensor) and x.is_floating_point() and x.dtype != torch.float64 and x.dtype != dtype:
            return x.to(dtype)
        return x

    return cast


def _first_tensor(args, kwargs):
    for a in list(args) + list(kwargs.values()):
        if isinstance(a, torch.Tensor):
            return a
    return None


class CudaAutocastOps(TorchFunctionMode):
    """Applies CUDA's dropout kernel always, and CUDA autocast's fp32 and CUDA-only low-precision policies while
    CPU autocast is on."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.dropout:
            return _dropout(*args, **kwargs)
        if not torch.is_autocast_enabled("cpu"):
            return func(*args, **kwargs)
        if func in _FP32:
            return func(*tree_map(_cast(torch.float32), args), **tree_map(_cast(torch.float32), kwargs))
        if func in _SET_DTYPE:
            first = _first_tensor(args, kwargs)
            if (
                first is not None
                and first.is_floating_point()
                and first.dtype != torch.float64
                and kwargs.get("dtype") is None
                and not _dtype_positional(func, args)
            ):
                kwargs = dict(kwargs, dtype=torch.float32)
            return func(*args, **kwargs)
        if func in _CROSS_ENTROPY:
            return _cross_entropy(*args, **kwargs)
        if func in _LOW:
            low = torch.get_autocast_dtype("cpu")
            return func(*tree_map(_cast(low), args), **tree_map(_cast(low), kwargs))
        return func(*args, **kwargs)


def _dtype_positional(func, args) -> bool:
    """softmax(input, dim, dtype) / F.softmax(input, dim, _stacklevel, dtype) may carry dtype positionally."""
    name = getattr(func, "__name__", "")
    if name in ("softmax", "log_softmax"):
        limit = 4 if func in (F.softmax, F.log_softmax) else 3
        return len(args) >= limit and args[limit - 1] is not None
    return False


def _dropout(input, p=0.5, training=True, inplace=False):
    """CUDA's dropout: the fused native_dropout (bool mask saved) when 0 < p < 1 in training."""
    if not training or p <= 0.0 or p >= 1.0 or inplace:
        return F.dropout(input, p, training, inplace)
    return torch.native_dropout(input, p, True)[0]


def _cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean", label_smoothing=0.0):
    """CUDA autocast has no entry for cross_entropy_loss: the composite runs log_softmax (fp32_set_opt_dtype, so
    the low-precision input is converted to fp32 first) and nll_loss (fp32)."""
    if label_smoothing or input.dtype not in LOW or target.is_floating_point():
        return F.cross_entropy(input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing)
    return F.nll_loss(F.log_softmax(input, 1, dtype=torch.float32), target, weight, size_average, ignore_index, reduce, reduction)


@contextlib.contextmanager
def gpu_autocast_queries():
    """`torch.is_autocast_enabled()` without a device (and for "cuda") answers with the CPU state, as on a GPU run
    where autocast("cuda") is the active one. peft's bnb LoRA layers ask this to decide their dtype casts."""
    orig_enabled, orig_dtype = torch.is_autocast_enabled, torch.get_autocast_dtype

    def is_enabled(device_type=None):
        return orig_enabled("cpu" if device_type in (None, "cuda") else device_type)

    def get_dtype(device_type):
        return orig_dtype("cpu" if device_type == "cuda" else device_type)

    torch.is_autocast_enabled, torch.get_autocast_dtype = is_enabled, get_dtype
    try:
        yield
    finally:
        torch.is_autocast_enabled, torch.get_autocast_dtype = orig_enabled, orig_dtype


def autocast_region(dtype: torch.dtype | None, device_type: str = "cpu"):
    """The forward region of a training step: autocast in `dtype` (None: no autocast, fp32 training). On CPU the
    CUDA-only policies come from CudaAutocastOps, entered around the whole step."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=dtype)
