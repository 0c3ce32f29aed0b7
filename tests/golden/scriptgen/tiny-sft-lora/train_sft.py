# /// script
# requires-python = ">=3.11"
# dependencies = [
#     "torch==2.13.0",
#     "transformers==5.24.0",
#     "datasets==5.2.0",
#     "accelerate==1.15.0",
#     "peft==0.21.2",
#     "trl==1.16.0",
# ]
# ///
"""Supervised fine-tuning (SFT) with TRL's SFTTrainer.

Trains the model on instruction/answer conversations; TRL applies the tokenizer's chat template.

Run from this folder; common.py beside this file holds what every stage shares (loading, progress, resume).
Relative paths in CONFIG are relative to this file, paths given as flags to the current directory:

    pip install --requirements-from-script train_sft.py   # pip >= 26 reads the dependency block above
    python train_sft.py
    python train_sft.py --max-steps 10 --learning-rate 1e-4   # flags override TRAINING and CONFIG
    python train_sft.py --resume   # continue from the last checkpoint-* in the output directory

Progress: one JSON object per line on stdout and appended to <output_dir>/progress.jsonl (events start, log,
checkpoint, end). SIGINT or SIGTERM saves a checkpoint after the current step and exits with code 130.
"""

from __future__ import annotations

import sys
from pathlib import Path

from transformers import AutoModelForCausalLM
from trl import SFTConfig, SFTTrainer

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # common.py: on the path for `python train_sft.py`, and for an importer of this file too
from common import fit, load_data, load_model, load_tokenizer, model_source, run_guarded, start  # noqa: E402

# This run: the model, the data and the folders. Edit here or override with flags.
CONFIG = {
    'stage': 'sft',  # name of this stage in the plan
    'train': 'sft',  # training kind
    'model': 'tiny',  # hub id, local folder, or 'tiny' (a 2-layer random Llama built here, no download)
    'base_from': '',  # output folder of the stage this one starts from ('' = start from model)
    'dataset': 'data/instructions.jsonl',  # local .json/.jsonl/.csv/.parquet, a saved dataset folder, or a hub id
    'data_format': 'instruction',  # instruction | preference | prompt | text
    'output_dir': 'outputs/sft',  # checkpoints, final model or adapter, progress.jsonl
    'save_merged': False,  # a later stage loads this one: also write <output_dir>/merged (adapter folded in)
    'compute_dtype': 'bfloat16',  # matmul dtype: merged copies, reward and value models load in it
}

# SFTConfig(**TRAINING): the trainer's arguments, as advisor planned them (output_dir comes from CONFIG).
# On a CPU the script runs in fp32; on a GPU without bf16, bf16 becomes fp16 (common.py for_device).
TRAINING = dict(
    max_length=512,
    packing=True,
    per_device_train_batch_size=1,
    gradient_accumulation_steps=1,
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
    include_num_input_tokens_seen='non_padding',
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
    target_modules='all-linear',
    task_type='CAUSAL_LM',
)

# transformers BitsAndBytesConfig(**QUANT): 4-bit weights for QLoRA; None = not quantized
QUANT = None


# ---------------------------------------------------------------- supervised fine-tuning


def main(argv: list[str] | None = None) -> int:
    run = start(HERE, __doc__, argv, config=CONFIG, training=TRAINING, model=MODEL, lora=LORA, quant=QUANT)
    cfg = run.config

    def train() -> None:
        source = model_source(run)
        tokenizer = load_tokenizer(source, run)
        dataset = load_data(cfg["dataset"], cfg["data_format"])
        model = load_model(AutoModelForCausalLM, source, run)
        trainer = SFTTrainer(
            model=model,
            args=SFTConfig(**run.training),
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=run.lora,
            callbacks=[run.progress],
        )
        fit(trainer, run, tokenizer)

    return run_guarded(run, train)


# ---------------------------------------------------------------- provenance: what advisor priced
# The plan's Setup in the estimator's names (estimators/setup.py), as it runs (estimators/effective.py; grad_ckpt
# resolved): the set-up the memory estimate priced. The script does not read it; the blocks above are its
# translation into TRL's names (advisor/scriptgen/trl_names.py).
PRICED = {
    'train': 'sft',
    'adaptation': 'lora',
    'precision': 'bf16',
    'optimizer': 'adamw',
    'micro_batch': 1,
    'seq_len': 512,
    'grad_accum': 1,
    'packed': True,
    'grad_ckpt': True,
    'attention': 'sdpa',
    'lora_r': 16,
    'lora_alpha': 32,
    'lora_targets': 'all-linear',
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
