"""The sizes the data-parallel layouts gather, shard and buffer (estimators/parallel.py prices them per GPU): the
FSDP root unit and one decoder-layer unit, the vocabulary tables, a layer's gradients, DeepSpeed's reduce buckets and
ZeRO-3's gathered working set, DDP's buckets. The layouts and their defaults are described in parallel.py."""

from __future__ import annotations

from . import terms as t
from .model import ModelSpec
from .params import count_params
from .setup import Setup

ZERO_REDUCE_BUFFERS = 2  # DeepSpeed double-buffers the gradient reduce bucket when overlap_comm is on


def _nonquant_bytes(setup: Setup) -> int:
    """Storage of weights that are never quantised (embeddings, head, norms): see terms.base_weights."""
    if setup.adaptation == "qlora":
        return 4 if setup.kbit_upcast else setup.compute_bytes
    return t.weight_bytes_per_param(setup)


def root_weight_bytes(m: ModelSpec, setup: Setup) -> int:
    """The FSDP root unit: token (and position) embeddings, untied head and final norm, unquantised."""
    pc = count_params(m)
    final_norm = m.hidden_size * m.norm_params_per_width if m.final_norm else 0
    return (pc.embedding + pc.lm_head + final_norm) * _nonquant_bytes(setup)


def table_weight_bytes(m: ModelSpec, setup: Setup) -> int:
    """The largest single tensor outside the decoder layers: the V x h embedding (or head) matrix."""
    return m.vocab_size * m.hidden_size * _nonquant_bytes(setup)


def layer_weight_bytes(m: ModelSpec, setup: Setup) -> int:
    """One decoder layer as stored (4-bit linears for QLoRA) plus its LoRA adapters: the base weights less the
    root unit, per layer, so it follows terms.base_weights exactly."""
    body = t.base_weights(m, setup) - root_weight_bytes(m, setup)
    adapters = t.adapter_weights(m, setup) if setup.adaptation != "full" else 0
    return max(0, body + adapters) // max(1, m.num_layers)


def layer_grad_bytes(m: ModelSpec, setup: Setup) -> int:
    """Unsharded gradients of one unit before its reduce-scatter (trainable parameters of one layer)."""
    if setup.adaptation == "full":
        body = (count_params(m).total - count_params(m).embedding - count_params(m).lm_head) * t.trainable_bytes_per_param(setup)
        return body // max(1, m.num_layers)
    return t.gradients(m, setup) // max(1, m.num_layers)


def zero_reduce_buckets(m: ModelSpec, setup: Setup) -> int:
    """DeepSpeed gradient reduce buffers: reduce_bucket_size = hidden^2 elements (HF "auto"), 16-bit, two of them."""
    return ZERO_REDUCE_BUFFERS * m.hidden_size * m.hidden_size * setup.compute_bytes


def zero3_working_set(m: ModelSpec, setup: Setup, shards: int) -> int:
    """ZeRO-3 parameters gathered at once: the largest module being computed (a decoder layer, or the V x h
    embedding / head), the prefetch bucket (0.9 hidden^2 elements, 16-bit) and the parameters under the
    persistence threshold (10 hidden elements: norms and biases) that stay whole on every rank.
    NB: ignores the max_live_parameters bound (1e9 by default, above one layer of any catalog model)."""
    current = max(layer_weight_bytes(m, setup), table_weight_bytes(m, setup))
    prefetch = int(0.9 * m.hidden_size * m.hidden_size) * setup.compute_bytes
    pc = count_params(m)
    persistent = (pc.norm + pc.linear_bias) * _nonquant_bytes(setup)
    return current + prefetch + persistent - persistent // shards


def fsdp_working_set(m: ModelSpec, setup: Setup, units: int) -> int:
    """FSDP1 parameters gathered at once: the root unit (kept gathered from the first forward to the end of
    backward) and `units` decoder layers (1 in forward and generation, 2 in backward with BACKWARD_PRE)."""
    return root_weight_bytes(m, setup) + units * layer_weight_bytes(m, setup)


def ddp_buckets(gradient_bytes: int) -> int:
    """DDP reducer buckets: every trainable parameter's gradient has a slot (25 MiB buckets, first bucket 1 MiB),
    so the buckets total the gradient size, allocated once and kept for the whole run."""
    return gradient_bytes
