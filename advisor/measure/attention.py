"""Attention as a GPU runs it, registered with transformers under the name "advisor_gpu_attention" (a name with "flash" in it would make transformers look for the flash-attn package).

On a GPU, SDPA (causal, no mask, GQA through enable_gqa) and flash_attention_2 both run the flash kernel: it keeps
the output and a fp32 log-sum-exp per head and row, never the S x S scores. On CPU, SDPA would dispatch a CPU
kernel, or the math path (S x S fp32 scores) when attention dropout is on (TRACING.md, item 3). So the trace calls
`aten._scaled_dot_product_flash_attention` directly (causal unless the module's `is_causal` is False, as an
encoder's is; K/V not repeated, no mask), through an autograd
function whose backward also allocates what the flash-attention 2 backward (`mha_bwd`, vendored in aten)
allocates through the caching allocator: `dq_accum` fp32 [B, S rounded to 128, H, D rounded to 32/64],
`softmax_d` fp32 [B, H, S rounded to 128], and for GQA `dk_expanded`/`dv_expanded` [B, S, H, D] that are summed
over the query-head groups afterwards.

The output keeps the layout the CUDA kernel gives it ([B, S, H, D] memory seen as [B, H, S, D]), so the
`transpose(1, 2).reshape(...)` that follows in the modeling code is a view, as on the GPU.

Packed-sequence detection: transformers treats fake tensors as "tracing" and then assumes packed sequences
(TRACING.md, item 2). A script feeding one sequence per row never triggers it, so `find_packed_sequence_indices`
answers None for fake tensors while tracing. Masks are not built for this attention (causal, or an encoder's
unpadded rows: no mask either).
"""

from __future__ import annotations

import contextlib

import torch

NAME = "advisor_gpu_attention"
KERNEL = "flash (aten._scaled_dot_product_flash_attention, flash-attn-2 backward workspaces)"


def _round(n: int, m: int) -> int:
    return -(-n // m) * m


class FlashAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, dropout_p, scale, cpu_kernel, causal=True):
        if cpu_kernel:  # real CPU runs (tests): same saved tensors, CPU kernel, K/V repeated for GQA
            kr, vr = _repeat(k, q.shape[1]), _repeat(v, q.shape[1])
            out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, kr, vr, 0.0, causal, scale=scale)
            seed = offset = None
        else:
            res = torch.ops.aten._scaled_dot_product_flash_attention(q, k, v, dropout_p, causal, False, scale=scale)
            out, lse, seed, offset = res[0], res[1], res[6], res[7]
        if not out.transpose(1, 2).is_contiguous():  # the CUDA kernel writes [B, S, H, D]
            out = out.transpose(1, 2).contiguous().transpose(1, 2)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.seed, ctx.offset, ctx.dropout_p, ctx.scale, ctx.cpu_kernel, ctx.causal = seed, offset, dropout_p, scale, cpu_kernel, causal
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, out, lse = ctx.saved_tensors
        b, h, s, d = q.shape
        kv = k.shape[1]
        # flash-attn 2 mha_bwd workspaces (allocated by the kernel through the caching allocator)
        work = [
            torch.empty((b, _round(s, 128), h, _round(d, 32 if d <= 128 else 64)), dtype=torch.float32, device=q.device),
            torch.empty((b, h, _round(s, 128)), dtype=torch.float32, device=q.device),
        ]
        if kv != h:
            work += [torch.empty((b, k.shape[2], h, d), dtype=k.dtype, device=q.device) for _ in range(2)]
        if ctx.cpu_kernel:
            kr, vr = _repeat(k, h), _repeat(v, h)
            dq, dk, dv = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
                grad_out, q, kr, vr, out, lse, 0.0, ctx.causal, scale=ctx.scale
            )
            if kv != h:
                dk = dk.view(b, kv, h // kv, s, d).sum(2)
                dv = dv.view(b, kv, h // kv, s, d).sum(2)
        else:
            dq, dk, dv = torch.ops.aten._scaled_dot_product_flash_attention_backward(
                grad_out, q, k, v, out, lse, None, None, s, k.shape[2], ctx.dropout_p, ctx.causal, ctx.seed, ctx.offset, scale=ctx.scale
            )
        del work
        return dq, dk, dv, None, None, None, None


def _repeat(x: torch.Tensor, heads: int) -> torch.Tensor:
    n = heads // x.shape[1]
    return x if n == 1 else x.repeat_interleave(n, dim=1)


def flash_attention_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """transformers attention interface: q [B, H, S, D], k/v [B, KV, S, D] -> ([B, S, H, D], None)."""
    if torch.is_autocast_enabled("cpu") and query.dtype == torch.float32:
        # CUDA autocast casts SDPA inputs (flash_attention_2 casts fp32 q/k/v to the autocast dtype itself)
        low = torch.get_autocast_dtype("cpu")
        query, key, value = query.to(low), key.to(low), value.to(low)
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    # an encoder's self-attention (BERT: is_causal False) sees every key; transformers' sdpa_attention_forward reads
    # the same attribute. Memory is the same either way: the kernel keeps only its output and log-sum-exp.
    causal = bool(getattr(module, "is_causal", True))
    out = FlashAttention.apply(query, key, value, float(dropout), scale, _CPU_KERNEL[0], causal)
    return out.transpose(1, 2), None


_CPU_KERNEL = [False]


def _no_mask(*args, **kwargs):
    return None


def register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(NAME, flash_attention_forward)
    AttentionMaskInterface.register(NAME, _no_mask)


@contextlib.contextmanager
def traced_attention(cpu_kernel: bool = False):
    """Register the attention function, neutralise packed-sequence detection for fake tensors, and choose the
    kernel (`cpu_kernel` for real CPU tensors)."""
    from transformers import masking_utils
    from transformers.utils.import_utils import is_fake_tensor

    register()
    orig = masking_utils.find_packed_sequence_indices

    def find_packed(position_ids):
        if is_fake_tensor(position_ids):
            return None
        return orig(position_ids)

    masking_utils.find_packed_sequence_indices = find_packed
    old, _CPU_KERNEL[0] = _CPU_KERNEL[0], cpu_kernel
    sdpa = torch.nn.functional.scaled_dot_product_attention
    torch.nn.functional.scaled_dot_product_attention = _sdpa_as_gpu(sdpa)
    # Only the DIRECT_SDPA families are traced with "sdpa". On a GPU their unpadded batches get no mask (SDPA's
    # is_causal instead: masking_utils._ignore_causal_mask_sdpa); under fake tensors transformers would build one.
    masks = masking_utils.AttentionMaskInterface._global_mapping
    sdpa_mask = masks["sdpa"]
    masks["sdpa"] = _no_mask
    try:
        yield
    finally:
        masking_utils.find_packed_sequence_indices = orig
        _CPU_KERNEL[0] = old
        torch.nn.functional.scaled_dot_product_attention = sdpa
        masks["sdpa"] = sdpa_mask


def _sdpa_as_gpu(sdpa):
    """torch's SDPA for the families that call it directly (hfmodel.DIRECT_SDPA: Falcon). A causal call without a
    mask whose k/v heads equal q's (or divide them, as flash-attn 2 takes multi-query directly) runs the flash
    kernel emulation, as on a GPU with flash_attention_2 or SDPA's flash backend; anything else goes to torch."""

    def call(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
        if attn_mask is None and is_causal and query.shape[1] % key.shape[1] == 0 and query.dim() == 4:
            if torch.is_autocast_enabled("cpu") and query.dtype == torch.float32:
                low = torch.get_autocast_dtype("cpu")
                query, key, value = query.to(low), key.to(low), value.to(low)
            s = scale if scale is not None else query.shape[-1] ** -0.5
            return FlashAttention.apply(query, key, value, float(dropout_p), s, _CPU_KERNEL[0])
        return sdpa(query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale, enable_gqa=enable_gqa)

    return call
