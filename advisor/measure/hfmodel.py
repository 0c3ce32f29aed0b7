"""The bare transformers model of a catalog `ModelSpec` under a `Setup`, before any training wrapper: its config
(`hf_config_from_spec`, use_cache off), storage and compute dtypes, the attention implementation on the CPU tracer
and on a GPU, and the fixes after building: shared embeddings re-tied and, for a model materialised from the meta
device with `to_empty`, rotary tables recomputed. build.py (the training set-up) and prefs.py (DPO's reference
model) both build from here, so neither imports the other's helpers.
"""

from __future__ import annotations

import torch

from estimators.setup import Setup


def storage_dtype(setup: Setup) -> torch.dtype:
    if setup.precision == "fp32" or setup.mixed:
        return torch.float32
    return torch.float16 if setup.precision.startswith("fp16") else torch.bfloat16


def compute_dtype(setup: Setup) -> torch.dtype | None:
    if setup.precision == "fp32":
        return None
    return torch.float16 if setup.precision.startswith("fp16") else torch.bfloat16


def hf_config(spec, setup: Setup):
    from transformers import AutoConfig

    from estimators.hf_config import hf_config_from_spec

    cfg = dict(hf_config_from_spec(spec))
    model_type = cfg.pop("model_type")
    cfg.pop("architectures", None)
    config = AutoConfig.for_model(model_type, **cfg)
    config.use_cache = False
    return config


def attn_implementation(spec, setup: Setup) -> str:
    """The kernel the script gets on a GPU, as transformers and torch's SDPA dispatch choose it:
    eager when asked; eager for sdpa on models transformers refuses sdpa for (Gemma 2's attention soft-capping);
    for sdpa in fp32 with grouped-query attention the math path (flash needs fp16/bf16, memory-efficient
    attention does not take GQA: torch sdp_utils), which stores what eager stores; otherwise the flash kernel
    (fp32 without GQA runs memory-efficient attention, which stores the same output and fp32 log-sum-exp)."""
    from .attention import NAME

    if setup.attention == "eager":
        return "eager"
    if setup.attention == "sdpa" and spec.attn_softcap:
        return "eager"
    if setup.attention == "sdpa" and setup.precision == "fp32" and spec.num_kv_heads != spec.num_heads:
        return "eager"
    if spec.model_type in DIRECT_SDPA:  # no attention-function hook: trace.py routes its SDPA calls instead
        return "sdpa"
    return NAME


# Families whose attention calls torch's scaled_dot_product_attention itself instead of transformers' attention
# functions (FALCON_ATTENTION_CLASSES has eager / sdpa / flash_attention_2 only): built with "sdpa", and the
# tracer's `traced_attention` sends their causal, unmasked SDPA calls to the flash kernel emulation.
DIRECT_SDPA = {"falcon"}


def cuda_attn_implementation(spec, setup: Setup) -> str:
    """The attention implementation a real GPU run asks transformers for."""
    if setup.attention == "eager" or (setup.attention == "sdpa" and spec.attn_softcap):
        return "eager"
    if setup.attention == "flash":
        import importlib.util

        return "flash_attention_2" if importlib.util.find_spec("flash_attn") else "sdpa"
    return "sdpa"


def retie(model, spec) -> None:
    """Share the input embeddings' weight with the output head again, when the spec ties them."""
    if spec.tie_embeddings:
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        head = base.get_output_embeddings()
        if head is not None:  # a sequence-classification model has no LM head
            head.weight = base.get_input_embeddings().weight


def reset_rotary(model) -> None:
    """Rotary inv_freq buffers are computed in __init__; to_empty leaves them uninitialised."""
    for module in model.modules():
        fn = getattr(module, "rope_init_fn", None)
        if fn is not None and hasattr(module, "inv_freq"):
            try:
                inv_freq, _ = fn(module.config, module.inv_freq.device)
            except Exception:
                continue
            module.inv_freq = inv_freq.to(module.inv_freq.dtype)
            if hasattr(module, "original_inv_freq"):
                module.original_inv_freq = module.inv_freq
