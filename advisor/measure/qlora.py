"""QLoRA's 4-bit matmul as bitsandbytes runs it on a GPU.

The model is built with bitsandbytes' own `Linear4bit` and quantised with its own `quantize_4bit` (packed uint8
weights, an absmax per 64 weights, with double quantisation 8-bit absmax plus a nested fp32 absmax per 256 and a
256-entry code), and the forward and backward run through bitsandbytes' Python code (`Linear4bit.forward`,
`matmul_4bit`, `MatMul4Bit`, which saves only the packed weight: no weight gradient, no input saved for it).

The one piece that is a kernel is `bitsandbytes::gemm_4bit`: under fake tensors its registered fake returns the
output only, and on CPU it is a different kernel. On CUDA, for more than 1536 rows (every training batch of
2048+ tokens; below that the choice is per GPU architecture) bitsandbytes runs `_dequant_linear_fallback`:
dequantise the nested absmax to fp32, add the offset, dequantise the weight to the input's dtype and F.linear.
`gemm_4bit_as_cuda` performs exactly those allocations. The backward's `dequantize_4bit` is plain Python over
ops with fakes, so it needs nothing special.
"""

from __future__ import annotations

import torch

CUSTOM_MAX_M = 1536  # bitsandbytes/backends/cuda/ops.py: _gemm_4bit_custom_max_m


def gemm_4bit_as_cuda(tracker, A, B, shapeB, absmax, blocksize, quant_type, bias=None, absmax_8bit=None, absmax_code=None, absmax_offset=None):
    """bitsandbytes.backends.cuda.ops._dequant_linear_fallback, allocation by allocation (values are not
    computed: this runs inside the tracker, on fake tensors; the weight is zeros, not garbage, so that real CPU runs
    stay finite where GRPO's generate samples from them)."""
    if absmax_8bit is not None:
        absmax_dq = torch.empty_like(absmax_8bit, dtype=torch.float32)
        tracker.track(absmax_dq)
        absmax = absmax_dq + absmax_offset
        tracker.track(absmax)
        del absmax_dq
    b_dq = torch.zeros(tuple(shapeB), dtype=A.dtype, device=A.device)
    tracker.track(b_dq)
    return torch.nn.functional.linear(A, b_dq, bias)


def emulated_ops() -> dict:
    """Ops the tracker replaces by their CUDA allocation pattern."""
    try:
        import bitsandbytes  # noqa: F401  (registers the op)

        op = torch.ops.bitsandbytes.gemm_4bit.default
    except (ImportError, AttributeError):
        return {}
    return {op: gemm_4bit_as_cuda}
