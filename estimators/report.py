"""The estimate as plain data: the stable `--json` schema (documented in README, "JSON schema")."""

from __future__ import annotations

from .band import context_model_text, reserved_model_text
from .dtypes import GIB
from .gpus import Gpu, gpus
from .result import CATEGORIES, COVERS, EXCLUDES, Estimate, phase_total
from .stacks import stack_summary
from .versions import version_of

SCHEMA = "advisor.estimate/1"


def size(nbytes: float) -> dict:
    return {"bytes": int(nbytes), "gib": round(nbytes / GIB, 3)}


def gpu_verdict(est: Estimate, gpu: Gpu) -> dict:
    return {
        "id": gpu.id,
        "name": gpu.name,
        "memory_gib": gpu.memory_gib,
        "fits": est.fits(gpu.memory_bytes),
        "headroom_gib": round(est.headroom(gpu.memory_bytes) / GIB, 2),
        "judged_on": "band high",  # fits and headroom use the upper end of peak.band, not the point figure
        "bf16": gpu.bf16,
    }


def estimate_dict(est: Estimate, model_how: str = "", model_key: str = "", gpu: Gpu | None = None) -> dict:
    return {
        "schema": SCHEMA,
        "model": {
            "name": est.model.name,
            "key": model_key,
            "resolved_from": model_how,
            "hf_id": est.model.hf_id,
            "params_total": est.params.total,
            "params_active": est.params.active,
            "trainable_params": est.trainable,
        },
        "setup": est.setup.public_dict() | {"grad_ckpt": est.setup.checkpointing},  # keyed as the flags are (--method)
        "stack": stack_summary(est.setup, est.model),  # the stack and library versions priced (estimators/stacks.py)
        "statistic": "allocated",
        "peak": {
            "phase": est.peak_phase,
            "allocated": size(est.peak_allocated),
            "reserved": size(est.peak_reserved),
            "cuda_context": size(est.context_bytes),
            "device": size(est.device_bytes),
            "band": est.band.to_dict(),  # the device figure's range on real GPUs (estimators/band.py)
            "reserved_model": reserved_model_text(est.setup.checkpointing),
            "context_model": context_model_text(version_of(est.setup.versions, "torch"), est.setup.world_size),
        },
        "categories": {name: size(nbytes) for name, nbytes in est.categories().items() if name in CATEGORIES},
        "terms": [{"name": v.name, "category": v.category, "note": v.note} | size(v.bytes) for v in est.terms],
        "phases": {name: size(phase_total(values)) for name, values in est.phases.items()},
        "paged_optimizer_states": size(est.paged_bytes),
        "memory_scope": "per GPU (rank 0)" if est.setup.world_size > 1 else "single GPU",
        "host_offload": size(est.host_offload_bytes) | {"scope": "host RAM per node for CPU offload"},
        "gpu": gpu_verdict(est, gpu) if gpu else None,
        "fits_on": [gpu_verdict(est, g) for g in gpus().values()],
        "covers": list(COVERS),
        "excludes": list(EXCLUDES),
        "warnings": list(est.warnings),
    }
