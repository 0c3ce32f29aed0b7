"""How long one operation takes on one GPU: a small roofline with few constants.

Each operation is compute-bound (FLOPs / achieved peak), memory-bound (bytes / achieved bandwidth) or, for the
many small kernels of eager PyTorch, bound by the CPU that launches them (kernels x dispatch time): its time is the
largest of the three (Williams, Waterman, Patterson 2009, "Roofline", CACM 52(4); the third roof is the host-side
launch cost of an eager framework). A matmul reaches less of the peak when it is small: the achieved fraction
grows with the token count M as M / (M + M_half) (few tokens per matmul cannot fill the GPU's tiles and waves).

Four constants are FITTED on the `kernels == plain` rows of estimators/calibration/published_throughput.csv
(fms-acceleration A100 80GB packed rows) by estimators/time_accuracy.py (`fit_constants`), then checked on the
rows they were not fitted on (the fms L40 rows and the PEFT L40S rows): bench/results/time_accuracy.txt records
both errors and the command that produced them. The values below are that fit's output, rounded to 3 digits.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Constants:
    """Four constants FITTED (estimators/time_accuracy.py FITTED; `advisor accuracy --throughput --fit` reruns the
    fit) on the expressible fms-acceleration A100 80GB plain packed rows, and three FIXED because no row of the fit
    set can pin them (every fitted row has >= 4096 tokens per matmul, is not launch-bound, and spends under a tenth
    of its step in attention)."""

    # FITTED. Fraction of the dense tensor peak a large bf16/fp16 GEMM reaches inside a Hugging Face training step
    # (cuBLAS reaches ~0.8 in isolation on A100: NVIDIA "Matrix Multiplication Background User's Guide"; the fit
    # did not move the 0.72 start value).
    matmul_efficiency: float = 0.72
    # FIXED. Tokens per matmul at which a GEMM reaches half of matmul_efficiency: 128 = one CUTLASS/cuBLAS output
    # tile row (128 x 128 tiles on Ampere/Hopper); fewer rows leave tiles and SM waves partly empty.
    matmul_half_tokens: float = 128.0
    # FITTED. Fraction of peak DRAM bandwidth that the unfused elementwise kernels, the optimizer and decoding reach
    # (STREAM-like copies reach ~0.8-0.9; many small eager kernels less).
    bandwidth_efficiency: float = 0.7065
    # FIXED at an earlier fit's value. Fraction of the dense peak causal flash attention reaches, forward and
    # backward (FlashAttention-2, arXiv:2307.08691: 50-73 % of A100 peak forward, lower backward). Once the
    # elementwise terms followed each tensor's dtype (estimators/time_bytes.py Dtypes) the fit set stopped pinning
    # it: the refit ran it to 0.75, above the paper's best forward figure, for a 2 % lower loss.
    attention_efficiency: float = 0.4806
    # FIXED. CPU time to launch one kernel from eager PyTorch (Python op dispatch, autograd bookkeeping, the
    # launch): about 10 us per operator (H. He, "Making Deep Learning Go Brrrr From First Principles", 2022).
    dispatch_s: float = 12e-6
    # FITTED. Fraction of the per-direction link bandwidth a step's collectives get, with no overlap assumed: the
    # fit absorbs FSDP's flat-parameter copies, the compute NCCL kernels slow down, and the overlap it does get.
    link_efficiency: float = 0.239
    # FITTED. Host time FSDP1 spends per wrapped unit per pass (forward, recompute, backward): its pre/post hooks
    # unshard the flat parameter (an all-gather), swap the original parameters' views, reshard, and in backward
    # reduce-scatter, and the rate limiter (limit_all_gathers) makes the CPU wait on the GPU between units. It is
    # a floor the step cannot go under, seen when a PEFT run has many tiny units: transformers wraps every
    # trainable LoRA A and B as its own unit (transformers/distributed/fsdp.py update_fsdp_plugin_peft, peft
    # fsdp_auto_wrap_policy); SantaCoder QLoRA and PowerLM-3B LoRA/QLoRA at batch 2 per GPU are bound by it.
    fsdp_unit_s: float = 1.778e-3


DEFAULT = Constants()

# Assumed multi-node network per GPU, GB/s per direction: one 200 Gb/s InfiniBand HDR port per GPU, the usual
# A100 cluster (NVIDIA DGX A100 user guide: 8 x 200 Gb/s HDR compute ports per 8 GPUs). Not fitted: no
# multi-node row in the calibration set.
INTER_NODE_GBS = 25.0
# DeepSpeed CPU Adam throughput for optimizer offload, parameters per second per node (order of magnitude from
# ZeRO-Offload, arXiv:2101.06840, §5: CPU-Adam steps ~1 billion parameters per second on a 2-socket server).
CPU_ADAM_PARAMS_PER_S = 1.0e9


@dataclass(frozen=True)
class Roof:
    """One card's roofs: compute peak (FLOP/s) for the compute dtype, DRAM bandwidth (B/s)."""

    peak_flops: float
    fp32_flops: float
    bandwidth: float


def matmul_time(roof: Roof, c: Constants, flops: float, tokens: float, nbytes: float, fp32: bool = False) -> float:
    """A matmul over `tokens` rows: the larger of its compute time at the size-dependent efficiency and its
    memory time (operands and result read and written once)."""
    if flops <= 0:
        return 0.0
    peak = roof.fp32_flops if fp32 else roof.peak_flops
    eff = c.matmul_efficiency * tokens / (tokens + c.matmul_half_tokens)
    return max(flops / (peak * eff), nbytes / (roof.bandwidth * c.bandwidth_efficiency))


def memory_time(roof: Roof, c: Constants, nbytes: float) -> float:
    return nbytes / (roof.bandwidth * c.bandwidth_efficiency) if nbytes > 0 else 0.0


def attention_time(roof: Roof, c: Constants, flops: float, nbytes: float) -> float:
    if flops <= 0:
        return 0.0
    return max(flops / (roof.peak_flops * c.attention_efficiency), memory_time(roof, c, nbytes))


def dispatch_time(c: Constants, kernels: float) -> float:
    return kernels * c.dispatch_s
