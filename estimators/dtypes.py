"""Bytes per element and per parameter for the storage formats a fine-tuning run uses."""

BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1, "bool": 1, "int64": 8}

# bitsandbytes 4-bit (nf4 / fp4): two weights per byte, one absmax per block of 64 weights.
# Source: bitsandbytes `quantize_4bit` (blocksize=64 default for Linear4bit); QLoRA paper §3 (arXiv:2305.14314).
NF4_BLOCK = 64
# Double quantisation stores each fp32 absmax as 8 bits, plus one fp32 scale per 256 absmax values
# (QLoRA paper §3, "Double Quantization": 0.5 -> 0.127 bits per parameter).
DQ_BLOCK = 256


def four_bit_bytes_per_param(double_quant: bool) -> float:
    """Storage of one 4-bit quantised weight, its quantisation constants included."""
    if double_quant:
        return 0.5 + 1 / NF4_BLOCK + 4 / (NF4_BLOCK * DQ_BLOCK)
    return 0.5 + 4 / NF4_BLOCK


# bitsandbytes 8-bit blockwise optimisers: one uint8 per state element plus one fp32 absmax per block of 256
# (bitsandbytes `Optimizer8bit`, block_wise=True, blocksize 256).
OPT8_BLOCK = 256

GIB = 1024**3
MIB = 1024**2

# The CUDA caching allocator rounds every allocation up to 512 bytes (c10/cuda/CUDACachingAllocator.cpp,
# kMinBlockSize); tensors of a few hundred bytes therefore count as 512.
ALLOC_BLOCK = 512


def gib(nbytes: float) -> float:
    return nbytes / GIB
