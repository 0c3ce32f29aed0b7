"""The data-parallel layouts (`--parallel`): what each one shards over how many ranks, which combinations the stack
can run (one-line errors naming the fix), the set-up each runs (QLoRA without peft's fp32 upcast under FSDP), and
their caveats. Per-GPU memory of a layout is estimators/parallel.py."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import EstimateError
from .setup import Setup

DEEPSPEED = ("zero1", "zero2", "zero3")
FSDP = ("fsdp", "fsdp_grad_op", "fsdp_hybrid")
PARAM_SHARDING = ("zero3", "fsdp", "fsdp_hybrid")  # layouts that keep only a shard of the weights at rest
BNB_OPTIMIZERS = ("adamw8bit", "paged_adamw8bit", "lion")  # bitsandbytes kernels: CUDA tensors only


@dataclass(frozen=True)
class Layout:
    """How one layout splits the training state over `shards` ranks (1 = replicated)."""

    name: str
    engine: str  # none | ddp | deepspeed | fsdp
    shards: int
    params_sharded: bool
    grads_sharded: bool
    states_sharded: bool
    gathered_through_backward: bool = False  # FSDP SHARD_GRAD_OP: weights stay gathered from forward to the step


def layout(setup: Setup) -> Layout:
    """What `setup.parallel` shards, over how many ranks (see the table in the module docstring)."""
    p, world = setup.parallel, setup.world_size
    if p == "none":
        return Layout(p, "none", 1, False, False, False)
    if p == "ddp":
        return Layout(p, "ddp", world, False, False, False)
    if p in DEEPSPEED:
        stage = int(p[-1])
        return Layout(p, "deepspeed", world, stage >= 3, stage >= 2, True)
    if p == "fsdp_hybrid":  # HYBRID_SHARD: FULL_SHARD inside a node, replicas across nodes
        return Layout(p, "fsdp", setup.gpus, True, True, True)
    return Layout(p, "fsdp", world, True, True, True, gathered_through_backward=(p == "fsdp_grad_op"))


def check(setup: Setup) -> None:
    """Reject layouts the stack cannot run, with one line that names the fix."""
    p, world = setup.parallel, setup.world_size
    offload = setup.offload_optimizer or setup.offload_params
    if world == 1 and p != "none" and not (p in DEEPSPEED and offload):
        raise EstimateError(
            f"--parallel {p} needs more than one GPU (--gpus N or --nodes N); on one GPU use --parallel none "
            "(or --parallel zero2 --offload-optimizer for ZeRO-Offload)"
        )
    if world > 1 and p == "none":
        raise EstimateError(f"{world} GPUs need a data-parallel layout: --parallel ddp, zero1, zero2, zero3, fsdp, fsdp_grad_op or fsdp_hybrid")
    if setup.offload_params and p not in PARAM_SHARDING:
        raise EstimateError(f"--offload-params needs a layout that shards the weights: --parallel zero3, fsdp or fsdp_hybrid (got {p})")
    if setup.offload_optimizer and p in ("none", "ddp"):
        raise EstimateError(f"--offload-optimizer needs DeepSpeed ZeRO (--parallel zero1, zero2 or zero3) or FSDP with --offload-params (got {p})")
    if setup.offload_optimizer and p in FSDP and not setup.offload_params:
        raise EstimateError(
            "FSDP offloads weights, gradients and optimizer states together: add --offload-params, or use --parallel zero2/zero3 to offload only the optimizer"
        )
    if offload and setup.optimizer in BNB_OPTIMIZERS:
        raise EstimateError(
            f"--optimizer {setup.optimizer} runs bitsandbytes kernels on the GPU and cannot be offloaded; use --optimizer adamw with CPU offload"
        )


def offload_option(setup: Setup) -> tuple[str, str, dict]:
    """The CPU-offload change `advisor fit` may suggest for this layout: (label, cost, Setup changes).
    DeepSpeed offloads the optimizer alone (ZeRO-Offload, from one GPU up); FSDP only offloads everything."""
    if setup.parallel in FSDP:
        return (
            "weights, gradients and optimizer states offloaded to CPU (FSDP CPUOffload)",
            "much slower steps (every layer is copied in); host RAM holds the sharded state",
            {"offload_optimizer": True, "offload_params": True, "parallel": "fsdp" if setup.parallel == "fsdp_grad_op" else setup.parallel},
        )
    parallel = setup.parallel if setup.parallel in DEEPSPEED else "zero2"
    return (
        f"optimizer states offloaded to CPU (DeepSpeed ZeRO-Offload, --parallel {parallel})",
        "slower steps (the optimizer runs on the CPU); host RAM holds states, fp32 masters and gradients",
        {"offload_optimizer": True, "parallel": parallel},
    )


def priced_setup(setup: Setup) -> Setup:
    """The set-up as the stack can run it: FSDP1 flattens each unit into one dtype (`_flat_param.py`: "Must
    flatten tensors with uniform dtype"), so peft's fp32 upcast of norms and embeddings next to 4-bit storage
    cannot be used under FSDP; QLoRA there keeps them in the compute dtype (applied by estimators/effective.py, which says so)."""
    if setup.adaptation == "qlora" and setup.kbit_upcast and setup.parallel in FSDP:
        return setup.with_(kbit_upcast=False)
    return setup


def warnings(setup: Setup) -> list[str]:
    """Layout caveats worth a line on stderr (not errors: the run works, with a condition)."""
    out = []
    if setup.adaptation == "qlora" and setup.parallel in PARAM_SHARDING + ("fsdp_grad_op",):
        out.append(
            f"QLoRA with --parallel {setup.parallel} needs bnb_4bit_quant_storage set to the compute dtype so the 4-bit weights can be sharded"
        )
    if setup.parallel == "fsdp_hybrid" and setup.nodes == 1:
        out.append("fsdp_hybrid on one node is FULL_SHARD: it replicates only across nodes")
    return out
