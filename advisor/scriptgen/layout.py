"""`accelerate_config.yaml` for a plan's parallel layout: one GPU, DDP, FSDP (full shard, shard grad op, hybrid),
DeepSpeed ZeRO-1/2/3 with optional CPU offload, over one or more machines.

Written as text (no YAML library needed); every value is a number, a boolean or one of a few fixed words.
"""

from __future__ import annotations

from estimators.setup import Setup

FILL_IN = "FILL_IN"  # fields the user sets per machine on multi-node runs
FSDP_STRATEGY = {"fsdp": "FULL_SHARD", "fsdp_grad_op": "SHARD_GRAD_OP", "fsdp_hybrid": "HYBRID_SHARD"}
ZERO_STAGE = {"zero1": 1, "zero2": 2, "zero3": 3}


def mixed_precision(setup: Setup) -> str:
    if setup.precision.startswith("bf16"):
        return "bf16"
    if setup.precision.startswith("fp16"):
        return "fp16"
    return "no"


def describe(setup: Setup) -> str:
    """The layout in words, for the config's first line and the README."""
    machines = f" on {setup.nodes} machines" if setup.nodes > 1 else ""
    if setup.parallel == "none" and setup.world_size == 1:
        return "one GPU (no distributed wrapper)"
    if setup.parallel in ("none", "ddp"):
        return f"DDP: a full copy of the model on each of {setup.world_size} GPUs{machines}"
    if setup.parallel in FSDP_STRATEGY:
        offload = ", parameters offloaded to CPU" if setup.offload_params else ""
        return f"FSDP {FSDP_STRATEGY[setup.parallel]} over {setup.world_size} GPUs{machines}{offload}"
    offloaded = [name for name, on in (("optimizer", setup.offload_optimizer), ("parameters", setup.offload_params)) if on]
    tail = f", {' and '.join(offloaded)} offloaded to CPU" if offloaded else ""
    return f"DeepSpeed ZeRO-{ZERO_STAGE[setup.parallel]} over {setup.world_size} GPUs{machines}{tail}"


def _yaml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def accelerate_config(setup: Setup) -> str:
    distributed = "NO"
    if setup.parallel in FSDP_STRATEGY:
        distributed = "FSDP"
    elif setup.parallel in ZERO_STAGE:
        distributed = "DEEPSPEED"
    elif setup.world_size > 1:
        distributed = "MULTI_GPU"
    lines = [
        f"# accelerate launch --config_file accelerate_config.yaml train_<stage>.py  -- layout: {describe(setup)}",
        "compute_environment: LOCAL_MACHINE",
        "debug: false",
        f"distributed_type: {distributed!r}" if distributed == "NO" else f"distributed_type: {distributed}",  # YAML reads a bare NO as false
        f"mixed_precision: {mixed_precision(setup)}",
        "downcast_bf16: 'no'",
        f"num_machines: {setup.nodes}",
        f"num_processes: {setup.world_size}  # GPUs over all machines",
        "gpu_ids: all",
        "use_cpu: false",
        "main_training_function: main",
        "rdzv_backend: static",
        "same_network: true",
    ]
    if setup.nodes > 1:
        lines += [
            f"machine_rank: 0  # {FILL_IN}: 0 on the main machine, 1..{setup.nodes - 1} on the others (a different value on each)",
            f"main_process_ip: {FILL_IN}  # the main machine's address, reachable from every machine",
            "main_process_port: 29500  # a free TCP port on the main machine, open between the machines",
        ]
    else:
        lines.append("machine_rank: 0")
    if distributed == "FSDP":
        lines.append("fsdp_config:")
        fsdp = {
            "fsdp_version": 1,
            "fsdp_sharding_strategy": FSDP_STRATEGY[setup.parallel],
            "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "fsdp_backward_prefetch": "BACKWARD_PRE",
            "fsdp_forward_prefetch": False,
            "fsdp_offload_params": setup.offload_params,
            "fsdp_state_dict_type": "SHARDED_STATE_DICT",
            "fsdp_cpu_ram_efficient_loading": True,
            "fsdp_sync_module_states": True,
            "fsdp_use_orig_params": True,
        }
        lines += [f"  {key}: {_yaml_value(value)}" for key, value in fsdp.items()]
    elif distributed == "DEEPSPEED":
        stage = ZERO_STAGE[setup.parallel]
        lines.append("deepspeed_config:")
        ds = {
            "zero_stage": stage,
            "gradient_accumulation_steps": setup.grad_accum,
            "gradient_clipping": 1.0,
            "offload_optimizer_device": "cpu" if setup.offload_optimizer else "none",
            "offload_param_device": "cpu" if setup.offload_params and stage == 3 else "none",
            "zero3_init_flag": stage == 3,
            "zero3_save_16bit_model": stage == 3,
        }
        if setup.nodes > 1:
            ds["deepspeed_multinode_launcher"] = "standard"
        lines += [f"  {key}: {_yaml_value(value)}" for key, value in ds.items()]
    return "\n".join(lines) + "\n"
