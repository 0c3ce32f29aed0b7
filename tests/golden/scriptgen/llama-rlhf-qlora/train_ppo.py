# /// script
# requires-python = ">=3.11"
# dependencies = [
#     "torch==2.13.0",
#     "transformers==5.24.0",
#     "datasets==5.2.0",
#     "accelerate==1.15.0",
#     "peft==0.21.2",
#     "trl==1.12.0",
#     "bitsandbytes==0.50.2",
# ]
# [tool.advisor]
# exact = ["trl"]  # trl.experimental.ppo exists up to trl 1.12.0: advisor launch builds an environment with it
# ///
"""PPO (RLHF step 3) with trl 1.12.0's trl.experimental.ppo.PPOTrainer.

Policy + value model + frozen reference + reward model. trl removed PPO after 1.12.0, so this script pins
trl==1.12.0: `advisor launch` runs it in an environment with that trl, built once (README.md: 'PPO: its own environment').

Run from this folder; common.py beside this file holds what every stage shares (loading, progress, resume).
Relative paths in CONFIG are relative to this file, paths given as flags to the current directory:

    pip install --requirements-from-script train_ppo.py   # pip >= 26 reads the dependency block above
    python train_ppo.py
    python train_ppo.py --max-steps 10 --learning-rate 1e-4   # flags override TRAINING and CONFIG
    python train_ppo.py --resume   # continue from the last checkpoint-* in the output directory

Progress: one JSON object per line on stdout and appended to <output_dir>/progress.jsonl (events start, log,
checkpoint, end). SIGINT or SIGTERM saves a checkpoint after the current step and exits with code 130.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import torch
import trl
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, TrainerCallback

try:
    from trl.experimental.ppo import PPOConfig, PPOTrainer
except ImportError:  # trl 1.13 and later have no PPO
    sys.exit(
        f"error: this PPO script needs trl==1.12.0 (installed: trl {trl.__version__}). Install its dependency block into an "
        "environment of its own (`advisor launch` builds one; README.md: 'PPO: its own environment')."
    )

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # common.py: on the path for `python train_ppo.py`, and for an importer of this file too
from common import load_data, load_model, load_reward_model, load_tokenizer, model_source, quiet, resume_checkpoint, reward_source, run_guarded, save_final, start  # noqa: E402

# This run: the model, the data and the folders. Edit here or override with flags.
CONFIG = {
    'stage': 'ppo',  # name of this stage in the plan
    'train': 'ppo',  # training kind
    'model': 'meta-llama/Llama-3.1-8B-Instruct',  # hub id, local folder, or 'tiny' (a 2-layer random Llama built here, no download)
    'base_from': 'outputs/sft',  # output folder of the stage this one starts from ('' = start from model)
    'reward_model': 'outputs/reward',  # output folder of the reward-model stage, or a reward model folder / hub id ('' = none)
    'dataset': 'data/prompts.jsonl',  # local .json/.jsonl/.csv/.parquet, a saved dataset folder, or a hub id
    'data_format': 'prompt',  # instruction | preference | prompt | text
    'output_dir': 'outputs/ppo',  # checkpoints, final model or adapter, progress.jsonl
    'save_merged': False,  # a later stage loads this one: also write <output_dir>/merged (adapter folded in)
    'max_length': 1024,  # prompt + completion tokens: longer prompts are cut from the left
    'compute_dtype': 'bfloat16',  # matmul dtype: merged copies, reward and value models load in it
    'kbit_upcast': True,  # peft prepare_model_for_kbit_training: fp32 copies of the non-quantized weights
    'kbit_device_map': True,  # each process loads its 4-bit copy on its own GPU (False: FSDP / ZeRO place the shards)
}

# PPOConfig(**TRAINING): the trainer's arguments, as advisor planned them (output_dir comes from CONFIG).
# On a CPU the script runs in fp32; on a GPU without bf16, bf16 becomes fp16 (common.py for_device).
TRAINING = dict(
    response_length=512,
    local_rollout_forward_batch_size=2,
    kl_coef=0.1,
    stop_token='eos',
    num_mini_batches=1,
    num_sample_generations=0,
    per_device_train_batch_size=2,
    gradient_accumulation_steps=8,
    learning_rate=0.0002,
    num_train_epochs=1.0,
    max_steps=-1,
    warmup_steps=0.03,  # below 1: a fraction of the steps
    lr_scheduler_type='cosine',
    weight_decay=0.0,
    seed=42,
    logging_steps=1,
    save_steps=2,
    save_strategy='steps',
    activation_checkpointing=True,
    bf16=True,
    fp16=False,
    optim='adamw_torch_fused',
    report_to='none',
    disable_tqdm=True,  # progress goes out as JSON lines (common.py Progress)
    include_num_input_tokens_seen='no',
)

# AutoModelForCausalLM.from_pretrained(model, **MODEL)
MODEL = dict(
    dtype='bfloat16',
    attn_implementation='sdpa',
    trust_remote_code=False,
)

# peft LoraConfig(**LORA): adapters on these modules; None = full fine-tuning (every weight trained)
LORA = dict(
    r=16,
    lora_alpha=32,
    lora_dropout=0.05,
    target_modules=['q_proj', 'k_proj', 'v_proj', 'o_proj'],
    task_type='CAUSAL_LM',
)

# transformers BitsAndBytesConfig(**QUANT): 4-bit weights for QLoRA; None = not quantized
QUANT = dict(
    load_in_4bit=True,
    bnb_4bit_quant_type='nf4',
    bnb_4bit_use_double_quant=True,
    bnb_4bit_compute_dtype='bfloat16',
)


# ---------------------------------------------------------------- PPO (trl 1.12: removed from later trl)


def main(argv: list[str] | None = None) -> int:
    run = start(HERE, __doc__, argv, config=CONFIG, training=TRAINING, model=MODEL, lora=LORA, quant=QUANT)
    cfg = run.config

    def train() -> None:
        source = model_source(run)
        scorer = reward_source(run)
        if not scorer:
            sys.exit("error: PPO needs a reward model: train the reward stage first or pass --reward-model")
        tokenizer = load_tokenizer(source, run)
        tokenizer.padding_side = "left"
        max_prompt = max(8, cfg["max_length"] - run.training["response_length"])
        dataset = prompt_dataset(load_data(cfg["dataset"], cfg["data_format"]), tokenizer, max_prompt)
        total = total_updates(run.training, len(dataset))
        checkpoint = resume_checkpoint(run)
        done = run.progress.resume_step
        if done >= total:
            print(f"{checkpoint} is at step {done} of {total}: nothing left to train", file=sys.stderr)

        peft_config = run.lora
        ref_model = None  # LoRA: the adapter-disabled policy is the reference
        if checkpoint is not None and peft_config is not None:
            policy = PeftModel.from_pretrained(load_model(AutoModelForCausalLM, source, run), str(checkpoint), is_trainable=True)
            peft_config = None
        elif checkpoint is not None:
            policy = load_model(AutoModelForCausalLM, str(checkpoint), run)
        else:
            policy = load_model(AutoModelForCausalLM, source, run)
        if run.lora is None:
            ref_model = load_model(AutoModelForCausalLM, source, run)
        reward_model, _ = load_reward_model(scorer, run)
        # The value model starts from the reward model and trains fully (in the compute dtype, never 4-bit).
        value_from = checkpoint / "value_model" if checkpoint is not None and (checkpoint / "value_model").is_dir() else scorer
        value_model = AutoModelForSequenceClassification.from_pretrained(
            str(value_from), num_labels=1, dtype=run.compute_dtype, trust_remote_code=run.model["trust_remote_code"]
        )
        value_model.config.pad_token_id = tokenizer.pad_token_id
        state = PPOState(done, total)
        trainer = PPOTrainer(
            args=ppo_config(run.training, max(total - done, 1)),
            processing_class=tokenizer,
            model=policy,
            ref_model=ref_model,
            reward_model=reward_model,
            value_model=value_model,
            train_dataset=dataset,
            eval_dataset=dataset.select(range(min(4, len(dataset)))),
            peft_config=peft_config,
            callbacks=[state, run.progress],
        )
        state.trainer = trainer
        if checkpoint is not None and (checkpoint / "optimizer.pt").is_file():
            try:
                trainer.optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", map_location="cpu", weights_only=True))
            except (RuntimeError, ValueError, KeyError) as exc:
                print(f"optimizer state not restored ({exc}); continuing with a fresh optimizer", file=sys.stderr)
        quiet(trainer)
        if done < total:
            trainer.train()
        run.progress.step = max(done, trainer.state.global_step)
        save_final(trainer, run, tokenizer)

    return run_guarded(run, train)


def prompt_dataset(dataset, tokenizer, max_prompt: int):
    """PPO takes tokenized prompts: the chat template with the assistant turn opened, left-truncated."""

    def encode(row):
        prompt = row["prompt"]
        text = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False) if isinstance(prompt, list) else prompt
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][-max_prompt:]
        return {"input_ids": ids, "lengths": len(ids)}

    return dataset.map(encode, remove_columns=dataset.column_names)


def rollout_batch(training: dict) -> int:
    return training["per_device_train_batch_size"] * training["gradient_accumulation_steps"] * int(os.environ.get("WORLD_SIZE", "1"))


def total_updates(training: dict, rows: int) -> int:
    if training["max_steps"] > 0:
        return training["max_steps"]
    return max(1, math.ceil(training["num_train_epochs"] * rows / rollout_batch(training)))


def ppo_config(training: dict, updates: int) -> PPOConfig:
    """PPO counts episodes (prompts), not steps: max_steps becomes total_episodes."""
    kwargs = {key: value for key, value in training.items() if key != "max_steps"}
    return PPOConfig(**kwargs, total_episodes=updates * rollout_batch(training))


class PPOState(TrainerCallback):
    """trl's PPOTrainer cannot resume: this keeps the step count going after --resume and stores the value
    model next to each checkpoint's policy, so a resumed run continues with both."""

    def __init__(self, start_step: int, total_steps: int):
        self.start_step, self.total_steps, self.trainer = start_step, total_steps, None

    def on_train_begin(self, args, state, control, **kwargs):
        state.global_step, state.max_steps = self.start_step, self.total_steps

    def on_save(self, args, state, control, **kwargs):
        if self.trainer is not None and self.trainer.is_world_process_zero():
            wrapper = self.trainer.accelerator.unwrap_model(self.trainer.model)
            wrapper.value_model.save_pretrained(Path(args.output_dir) / f"checkpoint-{state.global_step}" / "value_model")


# ---------------------------------------------------------------- provenance: what advisor priced
# The plan's Setup in the estimator's names (estimators/setup.py), as it runs (estimators/effective.py; grad_ckpt
# resolved): the set-up the memory estimate priced. The script does not read it; the blocks above are its
# translation into TRL's names (advisor/scriptgen/trl_names.py).
PRICED = {
    'train': 'ppo',
    'adaptation': 'qlora',
    'precision': 'bf16',
    'optimizer': 'adamw',
    'micro_batch': 2,
    'seq_len': 1024,
    'grad_accum': 8,
    'packed': True,
    'grad_ckpt': True,
    'attention': 'sdpa',
    'lora_r': 16,
    'lora_alpha': 32,
    'lora_targets': 'attention',
    'lora_dropout': 0.05,
    'quant_type': 'nf4',
    'double_quant': True,
    'kbit_upcast': True,
    'ref_model': 'auto',
    'num_generations': 8,
    'response_len': 512,
    'loss': 'fused',
    'gpus': 1,
    'nodes': 1,
    'parallel': 'none',
    'offload_optimizer': False,
    'offload_params': False,
    'stack': 'trl',
    'versions': '',
    'dora': False,
    'modules_to_save': '',
    'act_offload': False,
    'optim_in_bwd': False,
    'galore': False,
    'torch_compile': False,
    'galore_layerwise': False,
    'llama_adapter': False,
    'adapter_len': 10,
    'adapter_layers': 30,
}


if __name__ == "__main__":
    sys.exit(main())
