"""Per-GPU memory of the data-parallel layouts: what each one shards, gathers, buffers and offloads to host RAM.

Which layouts exist and what each shards is estimators/layouts.py. `per_gpu()` takes the single-GPU phases of a training step (from `estimate()` and `kinds.py`) and turns them into
the figures of one GPU (rank 0) of a `--gpus x --nodes` job. It never changes activations: every rank runs its own
micro-batch, so saved activations, logits and KV caches are per GPU whatever the layout.

What each layout keeps per GPU (N = ranks the states are split over; `fsdp_hybrid` shards within a node only):

  layout         weights   gradients  optimizer  extra buffers
  ddp            full      full       full       gradient buckets (a second copy of all gradients)
  zero1          full      full       1/N        fp32 master weights 1/N, reduce buckets
  zero2          full      1/N        1/N        fp32 master weights 1/N, reduce buckets
  zero3          1/N       1/N        1/N        fp32 master weights 1/N, reduce buckets, gathered layer + prefetch
  fsdp           1/N       1/N        1/N        gathered root unit + one decoder layer (two in backward)
  fsdp_grad_op   full*     1/N        1/N        (*gathered from the first forward to the end of backward)
  fsdp_hybrid    1/gpus    1/gpus     1/gpus     as fsdp

Stack and defaults priced (accelerate 1.15, transformers 5.24, torch 2.x, DeepSpeed as HF Trainer configures it):
- DDP: torch `DistributedDataParallel` with `bucket_cap_mb=25` and `gradient_as_bucket_view=False` (both defaults,
  also accelerate's `DistributedDataParallelKwargs` defaults): the reducer allocates flat bucket tensors for every
  trainable parameter at construction, so the buckets hold a second copy of all gradients for the whole run
  (torch docs, `gradient_as_bucket_view`: "the saved memory size will be equal to the total gradients size").
- DeepSpeed ZeRO with the HF Trainer "auto" values (transformers/integrations/deepspeed.py,
  `trainer_config_finalize`): reduce_bucket_size = hidden^2, stage3_prefetch_bucket_size = 0.9 hidden^2,
  stage3_param_persistence_threshold = 10 hidden (smaller tensors, norms and biases, are never partitioned).
  ZeRO keeps fp32 master weights next to 16-bit model weights (ZeRO paper, K = 12 bytes per parameter with Adam)
  and converts the averaged 16-bit gradient partition to fp32 in the step. Two reduce buffers (overlap_comm).
- ZeRO-3 generation (GRPO/PPO): TRL's `unwrap_model_for_generation(gather_deepspeed3_params=True)` (its
  `ds3_gather_for_generation` default) gathers every trained parameter for the whole generate call.
  ZeRO-3 converts gradients to fp32 one sub_group_size (1e9 elements) at a time.
- FSDP1 through accelerate (`fsdp_version` 1, what advisor/scriptgen/layout.py writes), TRANSFORMER_BASED_WRAP:
  one FSDP unit per decoder layer, the root unit holds embeddings, final norm and head; the root is not resharded
  after forward (torch/distributed/fsdp/_runtime_utils.py: "Do not free the root's parameters in the
  post-forward for FULL_SHARD"). BACKWARD_PRE prefetch (the generated config; the plugin's own default is
  NO_PREFETCH) gathers the next unit while the current one is differentiated: two layers gathered in backward.
  FSDP1 flattens each unit into one dtype (`_flat_param.py`: "Must flatten tensors with uniform dtype"), so
  QLoRA under FSDP keeps the non-quantised weights in the compute dtype (no peft fp32 upcast).
  `limit_all_gathers=True` (default) keeps forward at one unit in flight. Unsharded gradients of one unit exist
  until its reduce-scatter. With LoRA, HF Trainer uses peft's `fsdp_auto_wrap_policy` (adapters in their own units),
  so frozen base weights get no gradient.
- Offload: DeepSpeed `offload_optimizer` (ZeRO-Offload: fp32 master weights, optimizer states and the fp32
  gradient partition live in pinned host memory; DeepSpeedCPUAdam steps there), DeepSpeed `offload_param` (ZeRO-3
  only: parameter partitions on the host), FSDP `CPUOffload(offload_params=True)` (parameters, gradients and the
  optimizer step on the CPU, all together).
NB: ignores NCCL's own communication buffers (allocated by NCCL outside PyTorch's allocator, not in
max_memory_allocated), FSDP flat-parameter padding (< N elements per unit), and DeepSpeed's small per-parameter
bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import terms as t
from .grad_accum import ACCUMULATED
from .layouts import Layout, layout, warnings
from .model import ModelSpec
from .parallel_units import ZERO_REDUCE_BUFFERS, ddp_buckets, fsdp_working_set, layer_grad_bytes, zero3_working_set, zero_reduce_buckets
from .setup import Setup

DDP_BUCKET_CAP_MB = 25  # torch.nn.parallel.DistributedDataParallel(bucket_cap_mb=25) default
ZERO3_SUB_GROUP = 10**9  # DeepSpeed sub_group_size default: ZeRO-3 steps (and upcasts gradients of) 1e9 elements at a time
FSDP_BACKWARD_UNITS = 2  # BACKWARD_PRE prefetch: the unit being differentiated and the next one
# Terms of `kinds.py` that are frozen extra models (not trained; prepared separately from the policy).
FROZEN_MODELS = ("reference model", "reward model")


# ---------------------------------------------------------------------------------------------- per GPU
@dataclass(frozen=True)
class PerGpu:
    phases: dict[str, list[t.TermValue]]
    host_bytes_per_gpu: int
    paged_bytes: int
    warnings: tuple[str, ...]


def _div(nbytes: int, n: int) -> int:
    return -(-nbytes // n) if n > 1 else nbytes


def _phase_kind(name: str) -> str:
    if name.startswith("optimizer"):
        return "step"
    if name.startswith("generation"):
        return "generation"
    if "backward" in name:
        return "backward"
    return "forward"


def per_gpu(
    m: ModelSpec,
    setup: Setup,
    phases: dict[str, list[t.TermValue]],
    *,
    trainable: int,
    master_params: int,
    paged_bytes: int = 0,
    frozen_sharded: bool = True,
) -> PerGpu:
    """The phases of one GPU under `setup`'s layout, the host RAM one GPU's offload needs, and the paged bytes.

    `trainable`: trainable parameters (for the fp32 gradient partition ZeRO-Offload keeps on the host).
    `master_params`: trainable parameters stored in 16 bits (ZeRO adds an fp32 master copy of each).
    `frozen_sharded`: whether frozen extra models are sharded with the policy (TRL prepares them with
    `prepare_deepspeed`/`prepare_fsdp`; trl 1.12's PPO only moves them to the device under FSDP).
    """
    lay = layout(setup)
    if lay.engine == "none":
        return PerGpu(phases, 0, paged_bytes, ())
    n = lay.shards
    ds = lay.engine == "deepspeed"
    fsdp_offload = lay.engine == "fsdp" and setup.offload_params
    states_offloaded = (ds and setup.offload_optimizer) or fsdp_offload
    params_offloaded = setup.offload_params  # zero3 offload_param or FSDP CPUOffload
    grads_offloaded = states_offloaded
    host: dict[str, int] = {}  # per GPU, by what is offloaded (max over phases: each is resident the whole step)
    gradient_total = max((sum(v.bytes for v in vals if v.category == "gradients") for vals in phases.values()), default=0)
    params_total = max(
        (sum(v.bytes for v in vals if v.category == "parameters" and v.name not in FROZEN_MODELS) for vals in phases.values()), default=0
    )

    out: dict[str, list[t.TermValue]] = {}
    for name, values in phases.items():
        kind = _phase_kind(name)
        new: list[t.TermValue] = []
        for v in values:
            new.append(_shard_term(v, lay, params_offloaded, grads_offloaded, states_offloaded, frozen_sharded, host))
        new += _layout_terms(m, setup, lay, kind, gradient_total, params_total, master_params, trainable, states_offloaded, host)
        out[name] = new
    paged = _div(paged_bytes, n) if lay.states_sharded else paged_bytes
    return PerGpu(out, sum(host.values()), paged, tuple(warnings(setup)))


def _shard_term(v, lay: Layout, params_off: bool, grads_off: bool, states_off: bool, frozen_sharded: bool, host: dict) -> t.TermValue:
    """One single-GPU term as rank 0 holds it."""
    n = lay.shards
    if v.category == "parameters" or v.name == "autocast weight copies":
        sharded = lay.params_sharded and (frozen_sharded or v.name not in FROZEN_MODELS)
        if not sharded:
            return v
        shard = _div(v.bytes, n)
        if params_off and v.category == "parameters":
            host[f"p:{v.name}"] = max(host.get(f"p:{v.name}", 0), shard)
            return t.TermValue(v.name, v.category, 0, f"{v.note}; 1/{n} shard offloaded to host RAM")
        return t.TermValue(v.name, v.category, shard, f"{v.note}; 1/{n} shard per GPU ({lay.name})")
    if v.category == "gradients":
        if not lay.grads_sharded:  # ddp, zero1: every rank holds all gradients until the reduction
            return v
        if v.name == ACCUMULATED and lay.engine == "fsdp":  # no_sync keeps them unsharded (estimators/grad_accum.py)
            return t.TermValue(v.name, v.category, v.bytes, f"{v.note}; unsharded under FSDP no_sync")
        shard = _div(v.bytes, n)
        if grads_off:
            if lay.engine == "fsdp":  # CPUOffload moves the gradient shards to the host (DeepSpeed: fp32 partition below)
                host[f"g:{v.name}"] = max(host.get(f"g:{v.name}", 0), shard)
            return t.TermValue(v.name, v.category, 0, f"{v.note}; reduced in buckets, 1/{n} partition kept in host RAM")
        return t.TermValue(v.name, v.category, shard, f"{v.note}; 1/{n} partition per GPU ({lay.name})")
    if v.category == "optimizer" or v.name in ("optimizer scratch", "foreach AdamW scratch"):  # the latter: stack_training.foreach_adamw
        if not lay.states_sharded:
            return v
        shard = _div(v.bytes, n)
        if states_off:
            if v.category == "optimizer":
                host[f"o:{v.name}"] = max(host.get(f"o:{v.name}", 0), shard)
            return t.TermValue(v.name, v.category, 0, f"{v.note}; 1/{n} partition on the host, stepped by the CPU")
        return t.TermValue(v.name, v.category, shard, f"{v.note}; 1/{n} partition per GPU ({lay.name})")
    return v


def _layout_terms(
    m, setup, lay: Layout, kind: str, gradient_total: int, params_total: int, master_params: int, trainable: int, states_off: bool, host: dict
) -> list[t.TermValue]:
    """Buffers and gathered weights a layout adds to one phase."""
    n = lay.shards
    out: list[t.TermValue] = []
    if lay.engine == "ddp":
        out.append(
            t.TermValue(
                "DDP gradient buckets",
                "other",
                ddp_buckets(gradient_total),
                f"flat {DDP_BUCKET_CAP_MB} MiB buckets holding every gradient for all-reduce",
            )
        )
        return out
    if lay.engine == "deepspeed":
        if master_params:
            master = _div(4 * master_params, n)
            if states_off:
                host["master"] = master
                out.append(t.TermValue("fp32 master weights (ZeRO)", "optimizer", 0, f"1/{n} partition in host RAM (ZeRO-Offload)"))
            else:
                out.append(t.TermValue("fp32 master weights (ZeRO)", "optimizer", master, f"fp32 copy of the 16-bit weights, 1/{n} partition"))
            if kind == "step" and not states_off:
                fp32_grads = min(master, 4 * ZERO3_SUB_GROUP) if lay.params_sharded else master
                out.append(
                    t.TermValue(
                        "fp32 gradient partition (ZeRO)", "temporaries", fp32_grads, "averaged 16-bit gradients converted to fp32 for the step"
                    )
                )
        if states_off and trainable:
            host["fp32 grads"] = _div(4 * trainable, n)  # the fp32 gradient partition DeepSpeedCPUAdam steps on
        if kind == "backward":
            out.append(
                t.TermValue(
                    "ZeRO reduce buckets", "other", zero_reduce_buckets(m, setup), f"{ZERO_REDUCE_BUFFERS} x reduce_bucket_size (hidden^2) 16-bit"
                )
            )
        if lay.params_sharded:
            if kind == "generation":
                gathered = params_total - _div(params_total, n) if not setup.offload_params else params_total
                out.append(
                    t.TermValue(
                        "gathered parameters (ZeRO-3)", "temporaries", gathered, "whole model gathered for generate (TRL ds3_gather_for_generation)"
                    )
                )
            elif kind != "step":
                out.append(
                    t.TermValue(
                        "gathered parameters (ZeRO-3)",
                        "temporaries",
                        zero3_working_set(m, setup, n),
                        "largest module being computed + prefetch bucket + unpartitioned norms/biases",
                    )
                )
        return out
    # FSDP
    if lay.gathered_through_backward:
        if kind != "step":
            out.append(
                t.TermValue(
                    "gathered parameters (FSDP)",
                    "temporaries",
                    params_total,
                    "SHARD_GRAD_OP: every unit stays gathered from its forward to the end of backward",
                )
            )
    elif kind != "step":
        units = FSDP_BACKWARD_UNITS if kind == "backward" else 1
        out.append(
            t.TermValue(
                "gathered parameters (FSDP)",
                "temporaries",
                fsdp_working_set(m, setup, units),
                f"root unit (embeddings, head) + {units} decoder layer unit(s)",
            )
        )
    if kind == "backward":
        out.append(t.TermValue("unsharded unit gradients (FSDP)", "other", layer_grad_bytes(m, setup), "one unit's gradients before reduce-scatter"))
    return out
