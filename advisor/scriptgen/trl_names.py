"""The plan in TRL's own words: a stage's Setup and hyper-parameters (the estimator's names) turned into the keyword
arguments of TRL's config classes (SFTConfig, RewardConfig, DPOConfig, GRPOConfig / RLOOConfig, trl 1.12's PPOConfig),
peft's LoraConfig, transformers' BitsAndBytesConfig and `from_pretrained`.

Translated once, when the run is generated: a script gets literal dicts (TRAINING, MODEL, LORA, QUANT) it passes on
as they are, and decides nothing of its own. The only runtime change is the device's (common.py `for_device`:
fp32 on a CPU, fp16 where a GPU has no bf16). Nothing here imports torch or TRL.
"""

from __future__ import annotations

from estimators.errors import EstimateError
from estimators.kind_models import trained_model
from estimators.lora_targets import FAMILY_PRESETS, lora_target_names, modules_to_save_names
from estimators.model import ModelSpec
from estimators.setup import Setup

# The TRL config class each script kind builds (the RLOO variant of a PPO stage trains with RLOOConfig).
TRL_CONFIG = {"sft": "SFTConfig", "reward": "RewardConfig", "dpo": "DPOConfig", "grpo": "GRPOConfig", "rloo": "RLOOConfig", "ppo": "PPOConfig"}

# estimator name -> TrainingArguments name, copied as they are (every kind)
SETUP_NAMES = {"micro_batch": "per_device_train_batch_size", "grad_accum": "gradient_accumulation_steps"}
HYPER_NAMES = {
    "learning_rate": "learning_rate",
    "epochs": "num_train_epochs",
    "max_steps": "max_steps",
    "warmup_ratio": "warmup_steps",  # below 1: a fraction of the steps
    "lr_scheduler": "lr_scheduler_type",
    "weight_decay": "weight_decay",
    "seed": "seed",
    "logging_steps": "logging_steps",
    "save_steps": "save_steps",
}
# estimator name -> the kind's own config name, copied as they are
KIND_NAMES = {
    "sft": {"seq_len": "max_length", "packed": "packing"},
    "reward": {"seq_len": "max_length"},
    "dpo": {"seq_len": "max_length"},
    "grpo": {"num_generations": "num_generations", "response_len": "max_completion_length"},
    "rloo": {"num_generations": "num_generations", "response_len": "max_completion_length"},
    "ppo": {"response_len": "response_length", "micro_batch": "local_rollout_forward_batch_size"},
}
# estimator name -> TRL name of the values the translation computes (documents `training` below; tested)
COMPUTED_NAMES = {
    "grad_ckpt": "activation_checkpointing",
    "optimizer": "optim",
    "precision": "bf16",  # and fp16
    "ref_model": "precompute_ref_log_probs",  # DPO; GRPO / RLOO: beta 0 without a reference
    "beta": "beta",  # PPO: kl_coef
    "act_offload": "activation_offloading",  # sft, reward, dpo (estimators/setup.py TRL_OFFLOAD_KINDS)
    "galore": "optim_target_modules",  # and optim galore_adamw
    "torch_compile": "torch_compile",  # written only when set
}
# estimator name -> LoraConfig name of the options written only when set (a LoraConfig without them is peft's default)
LORA_OPTION_NAMES = {"dora": "use_dora", "modules_to_save": "modules_to_save"}
GALORE = {"optim": "galore_adamw", "optim_target_modules": "all-linear"}  # every nn.Linear, as estimators/galore_terms.py galore prices
GALORE_LAYERWISE = "galore_adamw_layerwise"  # --galore-layerwise: transformers' per-parameter GaLore in backward
OPTIM = {  # Setup.optimizer -> TrainingArguments.optim (on a CPU common.py swaps the fused AdamW for the plain one)
    "adamw": "adamw_torch_fused",
    "adamw8bit": "adamw_bnb_8bit",
    "paged_adamw8bit": "paged_adamw_8bit",
    "adafactor": "adafactor",
    "sgd": "sgd",
    "sgd_momentum": "sgd",
    "lion": "lion_32bit",
}
ATTENTION = {"sdpa": "sdpa", "flash": "flash_attention_2", "eager": "eager"}  # Setup.attention -> attn_implementation
ONLINE = ("grpo", "rloo", "ppo")  # kinds that generate: tokens/s from their own logs, prompts limited by length


def weights_dtype(setup: Setup) -> str:
    """dtype the weights are loaded in: pure bf16/fp16 keep them in 16 bits, -mixed keeps fp32 master weights."""
    return {"bf16": "bfloat16", "fp16": "float16"}.get(setup.precision, "float32")


def compute_dtype(setup: Setup) -> str:
    """dtype matmuls run in (QLoRA: what the 4-bit weights are dequantised to)."""
    if setup.precision.startswith("bf16"):
        return "bfloat16"
    return "float16" if setup.precision.startswith("fp16") else "float32"


def precision_flags(setup: Setup) -> dict:
    """Trainer autocast flags. Pure fp16 full fine-tuning gets no GradScaler (it cannot unscale fp16 gradients)."""
    precision = setup.precision
    return {"bf16": precision in ("bf16", "bf16-mixed"), "fp16": precision == "fp16-mixed" or (precision == "fp16" and setup.adaptation != "full")}


def training(setup: Setup, hyper: dict, kind: str) -> dict:
    """The keyword arguments of the kind's TRL config (TRL_CONFIG[kind]), as it runs on a GPU with bf16."""
    # the kind's own arguments first: what sets this script apart from the other stages
    kwargs = {new: getattr(setup, name) for name, new in KIND_NAMES[kind].items()}
    if kind == "dpo":
        kwargs["beta"] = hyper["beta"]
        kwargs["precompute_ref_log_probs"] = setup.ref_model == "precomputed"
    elif kind in ("grpo", "rloo"):
        # KL to the reference (LoRA: the adapter-disabled base); ref_model "none": beta 0, no reference at all
        kwargs["beta"] = 0.0 if setup.ref_model == "none" else hyper["beta"]
    elif kind == "ppo":
        kwargs.update(kl_coef=hyper["beta"], stop_token="eos", num_mini_batches=1, num_sample_generations=0)
    kwargs.update({new: getattr(setup, name) for name, new in SETUP_NAMES.items()})
    kwargs.update({new: hyper[name] for name, new in HYPER_NAMES.items()})
    kwargs["save_strategy"] = "steps"
    kwargs["activation_checkpointing"] = setup.checkpointing
    kwargs.update(precision_flags(setup))
    kwargs["optim"] = OPTIM[setup.optimizer]
    if setup.optimizer == "sgd_momentum":
        kwargs["optim_args"] = "momentum=0.9"
    if setup.galore:  # GaLore AdamW (galore-torch): rank 128, projector update every 200 steps (transformers' defaults)
        kwargs.update(GALORE)
        if setup.galore_layerwise:  # one optimizer per parameter, stepped by its gradient hook (Setup refuses accumulation)
            kwargs["optim"] = GALORE_LAYERWISE
    if setup.act_offload:  # Setup refuses it for the kinds whose config has no such field
        kwargs["activation_offloading"] = True
    if setup.torch_compile:  # the Trainer hands accelerate a TorchDynamoPlugin (backend inductor), which compiles the model
        kwargs["torch_compile"] = True
    kwargs["report_to"] = "none"
    kwargs["disable_tqdm"] = True  # progress goes out as JSON lines (common.py Progress)
    # tokens/s for the progress events; online RL kinds log their own token counts
    kwargs["include_num_input_tokens_seen"] = "no" if kind in ONLINE else "non_padding"
    return kwargs


def model(setup: Setup, trust_remote_code: bool) -> dict:
    """`from_pretrained` keyword arguments (QLoRA: the compute dtype, which the non-quantized weights keep)."""
    dtype = compute_dtype(setup) if setup.adaptation == "qlora" else weights_dtype(setup)
    return {"dtype": dtype, "attn_implementation": ATTENTION[setup.attention], "trust_remote_code": bool(trust_remote_code)}


def lora_spec(plan, stage) -> ModelSpec | None:
    """The ModelSpec the stage's LoRA preset of FAMILY_PRESETS (qv, attention) and its modules_to_save are named from:
    the model the stage trains (a reward stage its own reward model, when the plan has a smaller one). None where the
    set-up names its modules itself (a list, all-linear) and saves none, so a plan whose model cannot be resolved here
    still generates."""
    if stage.setup.adaptation == "full" or (stage.setup.lora_targets not in FAMILY_PRESETS and not stage.setup.modules_to_save):
        return None
    from ..planning import stage_models

    return trained_model(stage.setup.train, *stage_models(plan, stage))


def lora(setup: Setup, kind: str, spec: ModelSpec | None) -> dict | None:
    """LoraConfig keyword arguments; None for full fine-tuning. A reward model's adapter (SEQ_CLS) also trains the new head.
    target_modules are the names the estimate priced: a preset resolved to `spec`'s family (query_key_value on GPT-NeoX),
    and so are modules_to_save (GPT-NeoX: embed_in). DoRA and modules_to_save appear only when set."""
    if setup.llama_adapter:  # priced only (estimators/adapter_prompt_terms.py): no script trains it, so none is written
        raise EstimateError(
            "--llama-adapter is priced only: generated scripts train LoRA (TRL with peft's LoraConfig), so "
            "`advisor generate` does not write a LLaMA-Adapter run; plan without --llama-adapter"
        )
    if setup.adaptation == "full":
        return None
    targets = lora_target_names(spec, setup)
    kwargs = {
        "r": setup.lora_r,
        "lora_alpha": setup.lora_alpha,
        "lora_dropout": setup.lora_dropout,
        "target_modules": list(targets) if targets else "all-linear",
        "task_type": "SEQ_CLS" if kind == "reward" else "CAUSAL_LM",
    }
    if setup.dora:
        kwargs[LORA_OPTION_NAMES["dora"]] = True
    if setup.modules_to_save:
        assert spec is not None, "lora_spec resolves the model of every stage that saves modules"
        kwargs[LORA_OPTION_NAMES["modules_to_save"]] = list(modules_to_save_names(spec, setup))
    return kwargs


def quant(setup: Setup) -> dict | None:
    """BitsAndBytesConfig keyword arguments for QLoRA (4-bit weights, matmuls in the compute dtype); None otherwise."""
    if setup.adaptation != "qlora":
        return None
    kwargs = {
        "load_in_4bit": True,
        "bnb_4bit_quant_type": setup.quant_type,
        "bnb_4bit_use_double_quant": setup.double_quant,
        "bnb_4bit_compute_dtype": compute_dtype(setup),
    }
    if setup.parallel.startswith("fsdp"):  # FSDP shards the packed 4-bit weights as this dtype
        kwargs["bnb_4bit_quant_storage"] = compute_dtype(setup)
    return kwargs
