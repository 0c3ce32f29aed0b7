"""The once-per-step time terms of a training step (pure Python): the optimizer step, the collectives of the
parallel layout over the GPU link or the network, and CPU offload over PCIe. estimators/timing.py adds them to the
micro-batches' terms.
"""

from __future__ import annotations

from . import terms as t
from .gpus import Gpu
from .layouts import FSDP
from .model import ModelSpec
from .params import count_params
from .roofline import CPU_ADAM_PARAMS_PER_S, INTER_NODE_GBS, Constants, Roof, memory_time
from .setup import Setup

OPTIMIZER_BYTES = {
    # Bytes moved per trainable parameter by one optimizer step, per byte of the parameter's dtype (p) and
    # independent of it (fixed). torch.optim.AdamW foreach (the HF Trainer's adamw_torch): lerp of exp_avg (3 p),
    # mul and addcmul of exp_avg_sq (5 p), sqrt, divide and add eps into the denominator (6 p), addcdiv into the
    # parameter (4 p), decoupled weight decay (2 p): 20 p. bitsandbytes 8-bit AdamW is one fused kernel: parameter
    # and gradient read, parameter written (3 p), two uint8 states read and written (4).
    "adamw": (20, 0),
    "adamw8bit": (3, 4),
    "paged_adamw8bit": (3, 4),
    "adafactor": (14, 0),  # factored second moment: row/column reductions and the update pass over the gradient
    "sgd": (3, 0),
    "sgd_momentum": (6, 0),
    "lion": (8, 0),
}
CLIP_BYTES = 3  # gradient clipping (HF Trainer max_grad_norm 1.0): the norm reads each gradient, the scaling r/w


def optimizer_time(m: ModelSpec, setup: Setup, roof: Roof, c: Constants) -> float:
    n: float = t.trainable_params(m, setup)
    if setup.parallel in ("zero1", "zero2", "zero3", "fsdp", "fsdp_grad_op", "fsdp_hybrid"):
        n /= setup.gpus if setup.parallel == "fsdp_hybrid" else setup.world_size
    p = t.trainable_bytes_per_param(setup)
    per_p, fixed = OPTIMIZER_BYTES[setup.optimizer]
    return memory_time(roof, c, n * (per_p * p + fixed + CLIP_BYTES * p))


def fsdp_units(m: ModelSpec, setup: Setup) -> int:
    """FSDP units of the wrapped model: one per decoder layer (TRANSFORMER_BASED_WRAP), the root (embeddings, final
    norm, head), and under PEFT one per trainable leaf module, i.e. each adapted linear's lora_A and lora_B
    (peft fsdp_auto_wrap_policy's lambda policy, which transformers installs for every PEFT model). 0 without FSDP."""
    if setup.parallel not in FSDP or setup.world_size <= 1:
        return 0
    units = m.num_layers + 1
    if setup.adaptation != "full":
        units += m.num_layers * 2 * sum(1 if t.wrapped_parameter(lin) else lin.count for lin in t.lora_linears(m, setup))
    return units


def _ring(size: float, n: int) -> float:
    """Bytes each rank sends in a ring all-gather or reduce-scatter of `size` bytes over `n` ranks."""
    return size * (n - 1) / n if n > 1 else 0.0


def comm_bytes(m: ModelSpec, setup: Setup) -> dict[str, float]:
    """Bytes each GPU sends per optimizer step, by collective. DDP and ZeRO-1/2 reduce the gradients once per
    optimizer step (accumulation runs under no_sync) and ZeRO re-gathers the updated parameters; ZeRO-3 / FSDP
    FULL_SHARD gather every weight in forward and again in backward and reduce-scatter the gradients, on every
    micro-batch; SHARD_GRAD_OP gathers once per micro-batch and keeps the weights through backward. Weights move at
    their storage size (QLoRA's packed 4-bit), gradients at the trainable dtype."""
    n = setup.world_size
    if n <= 1 or setup.parallel == "none":
        return {}
    grads = t.trainable_params(m, setup) * t.trainable_bytes_per_param(setup)
    weights = t.base_weights(m, setup) + (t.adapter_weights(m, setup) if setup.adaptation != "full" else 0)
    ga = setup.grad_accum
    if setup.parallel.startswith("fsdp") and setup.adaptation != "full":
        # FSDP (use_orig_params=True, as accelerate runs PEFT) keeps one flat gradient per wrapped unit, frozen
        # weights included, and reduce-scatters all of it: "the gradient memory usage will be higher than expected
        # (namely, equivalent to not freezing those parameters)" (torch.distributed.fsdp FullyShardedDataParallel
        # docstring, use_orig_params).
        grads = max(grads, weights)
    if setup.parallel == "ddp":
        return {"gradient all-reduce": 2 * _ring(grads, n)}
    if setup.parallel in ("zero1", "zero2"):
        return {"gradient reduce-scatter": _ring(grads, n), "parameter all-gather": _ring(grads, n)}
    if setup.parallel == "fsdp_grad_op":
        return {"weight all-gather": ga * _ring(weights, n), "gradient reduce-scatter": ga * _ring(grads, n)}
    if setup.parallel == "fsdp_hybrid":
        g = setup.gpus
        return {
            "weight all-gather (in node)": 2 * ga * _ring(weights, g),
            "gradient reduce-scatter (in node)": ga * _ring(grads, g),
            "gradient all-reduce (across nodes)": 2 * _ring(grads / g, setup.nodes),
        }
    return {"weight all-gather": 2 * ga * _ring(weights, n), "gradient reduce-scatter": ga * _ring(grads, n)}


def link_bytes_per_s(gpu: Gpu, setup: Setup, collective: str) -> tuple[float, str]:
    """The bandwidth a collective runs at: the slowest link of the ring (the network once it spans nodes)."""
    intra = (gpu.interconnect_gbs or gpu.pcie_gbs or 16.0) * 1e9
    if setup.nodes > 1 and "in node" not in collective:
        return min(intra, INTER_NODE_GBS * 1e9), "network"
    return intra, gpu.interconnect


def offload_terms(m: ModelSpec, setup: Setup, gpu: Gpu, c: Constants) -> dict[str, tuple[float, str]]:
    """CPU offload (ZeRO-Offload / FSDP cpu_offload): gradients down and updated parameters up over PCIe each step,
    the Adam step on the CPU; parameter offload also streams every weight up in forward and backward."""
    out: dict[str, tuple[float, str]] = {}
    pcie = (gpu.pcie_gbs or 16.0) * 1e9 * c.bandwidth_efficiency
    shards = setup.world_size if setup.parallel != "none" else 1
    n = t.trainable_params(m, setup) / shards
    p = t.trainable_bytes_per_param(setup)
    if setup.offload_optimizer:
        out["optimizer offload: PCIe"] = (n * (p + p) / pcie, "pcie")
        out["optimizer offload: CPU Adam"] = (n / CPU_ADAM_PARAMS_PER_S, "cpu")
    if setup.offload_params:
        weights = t.base_weights(m, setup) / shards
        out["parameter offload: PCIe"] = (2 * setup.grad_accum * weights / pcie, "pcie")
    return out


def autocast_casts(m: ModelSpec, setup: Setup, roof: Roof, c: Constants) -> dict[str, tuple[float, str]]:
    """Mixed precision keeps fp32 weights: autocast casts each to the compute dtype on every forward (recompute
    included), reading 4 and writing 2 bytes per parameter."""
    if not setup.mixed and not (setup.adaptation == "qlora" and setup.kbit_upcast):
        return {}
    pc = count_params(m)
    params = pc.total if setup.mixed else pc.non_linear - pc.embedding  # QLoRA: the fp32-upcast head and norms
    uses = 2 if setup.checkpointing else 1
    return {"autocast weight casts": (memory_time(roof, c, params * (4 + setup.compute_bytes) * uses), "memory")}
