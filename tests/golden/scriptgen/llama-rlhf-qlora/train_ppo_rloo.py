# /// script
# requires-python = ">=3.11"
# dependencies = [
#     "torch==2.13.0",
#     "transformers==5.24.0",
#     "datasets==5.2.0",
#     "accelerate==1.15.0",
#     "peft==0.21.2",
#     "trl==1.16.0",
#     "bitsandbytes==0.50.2",
# ]
# ///
"""RLOO (REINFORCE leave-one-out) with TRL's RLOOTrainer: the current-trl alternative to PPO.

Online RL on the reward model of this run with the same environment as the other stages (trl >= 1.13 has
no PPO). Same reward model and KL coefficient as train_ppo.py, no value model. An alternative to run by
hand: the plan priced PPO, and `advisor launch` runs train_ppo.py.

Run from this folder; common.py beside this file holds what every stage shares (loading, progress, resume).
Relative paths in CONFIG are relative to this file, paths given as flags to the current directory:

    pip install --requirements-from-script train_ppo_rloo.py   # pip >= 26 reads the dependency block above
    python train_ppo_rloo.py
    python train_ppo_rloo.py --max-steps 10 --learning-rate 1e-4   # flags override TRAINING and CONFIG
    python train_ppo_rloo.py --resume   # continue from the last checkpoint-* in the output directory

Progress: one JSON object per line on stdout and appended to <output_dir>/progress.jsonl (events start, log,
checkpoint, end). SIGINT or SIGTERM saves a checkpoint after the current step and exits with code 130.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from transformers import AutoModelForCausalLM
from trl import RLOOConfig, RLOOTrainer

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # common.py: on the path for `python train_ppo_rloo.py`, and for an importer of this file too
from common import fit, load_data, load_model, load_reward_model, load_tokenizer, model_source, reward_source, run_guarded, start  # noqa: E402

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
    'max_length': 1024,  # prompt + completion tokens: longer prompts are left out
    'compute_dtype': 'bfloat16',  # matmul dtype: merged copies, reward and value models load in it
    'kbit_upcast': True,  # peft prepare_model_for_kbit_training: fp32 copies of the non-quantized weights
    'kbit_device_map': True,  # each process loads its 4-bit copy on its own GPU (False: FSDP / ZeRO place the shards)
}

# RLOOConfig(**TRAINING): the trainer's arguments, as advisor planned them (output_dir comes from CONFIG).
# On a CPU the script runs in fp32; on a GPU without bf16, bf16 becomes fp16 (common.py for_device).
TRAINING = dict(
    num_generations=8,
    max_completion_length=512,
    beta=0.1,
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


# ---------------------------------------------------------------- online RL with a leave-one-out baseline (RLOO)


def main(argv: list[str] | None = None) -> int:
    run = start(HERE, __doc__, argv, config=CONFIG, training=TRAINING, model=MODEL, lora=LORA, quant=QUANT)
    cfg = run.config

    def train() -> None:
        source = model_source(run)
        tokenizer = load_tokenizer(source, run)
        tokenizer.padding_side = "left"  # generation pads prompts on the left
        # prompts that leave room for the completion within max_length (the memory estimate assumes it)
        limit = max(8, cfg["max_length"] - run.training["max_completion_length"])
        dataset = fit_prompts(load_data(cfg["dataset"], cfg["data_format"]), tokenizer, limit)
        scorer = reward_source(run)
        if scorer:
            reward_model, reward_tokenizer = load_reward_model(scorer, run)
            rewards, reward_tokenizers = [reward_model], [reward_tokenizer]
        else:
            rewards, reward_tokenizers = reward_functions(cfg, dataset), None
        model = load_model(AutoModelForCausalLM, source, run)
        trainer = RLOOTrainer(
            model=model,
            reward_funcs=rewards,
            args=RLOOConfig(**run.training, generation_batch_size=generation_batch(run.training)),
            train_dataset=dataset,
            processing_class=tokenizer,
            reward_processing_classes=reward_tokenizers,
            peft_config=run.lora,
            callbacks=[run.progress],
        )
        fit(trainer, run, tokenizer)

    return run_guarded(run, train)


def fit_prompts(dataset, tokenizer, limit: int):
    """Keep the prompts of at most `limit` tokens."""

    def short_enough(row) -> bool:
        prompt = row["prompt"]
        text = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False) if isinstance(prompt, list) else prompt
        return len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= limit

    kept = dataset.filter(short_enough)
    if len(kept) < len(dataset):
        print(f"{len(dataset) - len(kept)} of {len(dataset)} prompts are longer than {limit} tokens: left out", file=sys.stderr)
    if len(kept) == 0:
        sys.exit(f"error: no prompt fits in {limit} tokens (max_length - max_completion_length); raise --seq-len")
    return kept


def generation_batch(training: dict) -> int:
    """Completions generated per round: a multiple of both num_generations and the global batch."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    batch = training["per_device_train_batch_size"] * world * training["gradient_accumulation_steps"]
    return math.lcm(training["num_generations"], batch)


# ---------------------------------------------------------------- rewards without a reward model


PLACEHOLDER_WARNING = (
    "warning: no reward was given, so GRPO trains on the PLACEHOLDER reward, which only prefers answers of about 200 "
    "characters and knows nothing of your task; give --reward-check FIELD, --reward-fn FILE.py:FUNCTION or --reward-model"
)


def _text(completion) -> str:
    return completion[-1]["content"] if isinstance(completion, list) else completion


def length_reward(completions, **kwargs) -> list[float]:
    """The placeholder reward needing no model: prefers answers of about 200 characters. Replace it with a check of
    your task (--reward-check, --reward-fn) or a trained reward model (--reward-model)."""
    return [-abs(len(_text(c)) - 200) / 200 for c in completions]


def _normal(text) -> str:
    return " ".join(str(text).split()).casefold()


def exact_match_reward(field: str):
    """The built-in checker: 1.0 when the completion equals the row's `field` (spaces and case ignored), else 0.0.
    TRL passes every dataset column to reward functions as a keyword argument, one value per completion."""

    def reward(completions, **kwargs) -> list[float]:
        expected = kwargs[field]
        return [1.0 if _normal(_text(c)) == _normal(want) else 0.0 for c, want in zip(completions, expected)]

    reward.__name__ = f"exact_match_{field}"
    return reward


def user_reward(spec: str):
    """The user's reward function from "file.py:function" (CONFIG's, made absolute against this folder, or a flag's)."""
    import importlib.util

    path, _, name = spec.rpartition(":")
    file = Path(path)
    if not file.is_file():
        sys.exit(f"error: the reward function file {file} does not exist")
    module_spec = importlib.util.spec_from_file_location(f"user_reward_{file.stem}", file)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    func = getattr(module, name, None)
    if not callable(func):
        sys.exit(f"error: {file} has no function {name!r}")
    return func


def reward_functions(cfg: dict, dataset) -> list:
    """The plan's reward: the user's function, the exact-match checker, or (said loudly) the placeholder."""
    if cfg.get("reward_fn"):
        return [user_reward(cfg["reward_fn"])]
    if cfg.get("reward_check"):
        if cfg["reward_check"] not in dataset.column_names:
            sys.exit(f"error: --reward-check {cfg['reward_check']}: the dataset has no such column ({', '.join(dataset.column_names)})")
        return [exact_match_reward(cfg["reward_check"])]
    print(PLACEHOLDER_WARNING, file=sys.stderr, flush=True)
    return [length_reward]


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
