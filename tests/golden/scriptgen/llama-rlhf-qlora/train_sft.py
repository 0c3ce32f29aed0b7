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
"""Supervised fine-tuning (SFT) with TRL's SFTTrainer.

Trains the model on instruction/answer conversations; TRL applies the tokenizer's chat template.

Run from this folder (relative paths in CONFIG are relative to this file, paths given as flags to the
current directory):

    pip install --requirements-from-script train_sft.py   # pip >= 26 reads the dependency block above
    python train_sft.py
    python train_sft.py --max-steps 10 --learning-rate 1e-4   # flags override CONFIG
    python train_sft.py --resume   # continue from the last checkpoint-* in the output directory

Progress: one JSON object per line on stdout and appended to <output_dir>/progress.jsonl (events start, log,
checkpoint, end). SIGINT or SIGTERM saves a checkpoint after the current step and exits with code 130.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import signal
import sys
import time
from pathlib import Path

import torch
from datasets import load_dataset
from peft import LoraConfig, PeftModel, prepare_model_for_kbit_training
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, BitsAndBytesConfig, TrainerCallback, set_seed
from transformers.trainer_callback import PrinterCallback, ProgressCallback
from trl import SFTConfig, SFTTrainer

# Everything this run does, as data: the values of the advisor plan. Edit here or override with flags.
CONFIG = {
    'stage': 'sft',  # name of this stage in the plan
    'train': 'sft',  # training kind
    'model': 'meta-llama/Llama-3.1-8B-Instruct',  # hub id, local folder, or 'tiny' (a 2-layer random Llama built here, no download)
    'base_from': '',  # output folder of the stage this one starts from ('' = start from model)
    'reward_model': '',  # output folder of the reward-model stage, or a reward model folder / hub id ('' = none)
    'trust_remote_code': False,
    'dataset': 'data/instructions.jsonl',  # local .json/.jsonl/.csv/.parquet, a saved dataset folder, or a hub id
    'data_format': 'instruction',  # instruction | preference | prompt | text
    'output_dir': 'outputs/sft',  # checkpoints, final model or adapter, progress.jsonl
    'save_merged': True,  # a later stage loads this one: also write <output_dir>/merged (adapter folded in)
    'lora_target_modules': ['q_proj', 'k_proj', 'v_proj', 'o_proj'],  # 'all-linear' = every linear layer of the decoder blocks
    'setup': {
        'train': 'sft',
        'method': 'qlora',
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
    },  # the plan's Setup, the set-up the memory estimate priced (grad_ckpt resolved)
    'hyper': {
        'learning_rate': 0.0002,
        'epochs': 1.0,
        'max_steps': -1,
        'warmup_ratio': 0.03,
        'lr_scheduler': 'cosine',
        'weight_decay': 0.0,
        'seed': 42,
        'logging_steps': 1,
        'save_steps': 2,
        'beta': 0.1,
    },  # the plan's hyper-parameters
}

HERE = Path(__file__).resolve().parent


# ---------------------------------------------------------------- command line, paths, precision, optimizer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", help="hub id, local folder, an earlier stage's output folder, or 'tiny'")
    parser.add_argument("--dataset", help="local .json/.jsonl/.csv/.parquet file, a saved dataset folder, or a hub id")
    parser.add_argument("--output-dir", help="where checkpoints, the final model and progress.jsonl go")
    parser.add_argument("--epochs", type=float, help="training epochs (ignored when --max-steps is set)")
    parser.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    parser.add_argument("--batch-size", type=int, help="micro-batch: sequences per device per step")
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--seq-len", type=int, help="maximum tokens per sequence")
    parser.add_argument("--save-steps", type=int, help="save a checkpoint every N steps")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint-* in the output directory")
    if CONFIG["train"] in ("grpo", "ppo"):
        parser.add_argument("--reward-model", help="reward model folder or hub id (GRPO without one uses a Python reward function)")
    if CONFIG["train"] == "grpo":
        parser.add_argument("--reward-fn", help="your reward function as FILE.py:FUNCTION (TRL's reward-function signature)")
        parser.add_argument("--reward-check", metavar="FIELD", help="reward 1 when the completion equals this dataset field, else 0")
    return parser.parse_args(argv)


def _location(value: str, base: Path) -> str:
    """A local path made absolute against `base` when it exists there; anything else is a hub id."""
    if not value or value == "tiny":
        return value
    path = Path(value).expanduser()
    if path.is_absolute():
        return str(path)
    return str((base / path).resolve()) if (base / path).exists() else value


def apply_overrides(config: dict, args: argparse.Namespace) -> dict:
    """CONFIG with the command-line overrides applied; every local path made absolute."""
    cfg = copy.deepcopy(config)
    cwd = Path.cwd()
    for key in ("model", "dataset"):
        cfg[key] = _location(cfg[key], HERE)
    for key in ("base_from", "reward_model"):  # output folders of earlier stages of this run
        cfg[key] = str((HERE / cfg[key]).resolve()) if cfg[key] else ""
    cfg["output_dir"] = str((HERE / cfg["output_dir"]).resolve())
    if args.model:
        cfg["model"], cfg["base_from"] = _location(args.model, cwd), ""
    if args.dataset:
        cfg["dataset"] = _location(args.dataset, cwd)
    given = [name for name in ("reward_model", "reward_fn", "reward_check") if getattr(args, name, None)]
    if len(given) > 1:
        sys.exit(f"error: give one reward, not {' and '.join('--' + n.replace('_', '-') for n in given)}")
    if given:  # a reward given here replaces the plan's
        cfg["reward_model"], cfg["reward_fn"], cfg["reward_check"] = "", "", ""
    if getattr(args, "reward_model", None):
        cfg["reward_model"] = _location(args.reward_model, cwd)
    if getattr(args, "reward_fn", None):
        path, _, name = args.reward_fn.rpartition(":")
        cfg["reward_fn"] = f"{_location(path, cwd)}:{name}"
    if getattr(args, "reward_check", None):
        cfg["reward_check"] = args.reward_check
    if args.output_dir:
        cfg["output_dir"] = str((cwd / Path(args.output_dir).expanduser()).resolve())
    setup, hyper = cfg["setup"], cfg["hyper"]
    if args.epochs is not None:
        hyper["epochs"] = args.epochs
    if args.max_steps is not None:
        hyper["max_steps"] = args.max_steps
    if args.batch_size is not None:
        setup["micro_batch"] = args.batch_size
    if args.learning_rate is not None:
        hyper["learning_rate"] = args.learning_rate
    if args.seq_len is not None:
        setup["seq_len"] = args.seq_len
    if args.save_steps is not None:
        hyper["save_steps"] = args.save_steps
    return cfg


def last_checkpoint(output_dir: str) -> Path | None:
    steps = []
    for child in Path(output_dir).glob("checkpoint-*"):
        suffix = child.name.split("-", 1)[1]
        if child.is_dir() and suffix.isdigit():
            steps.append((int(suffix), child))
    return max(steps)[1] if steps else None


def runtime_precision(setup: dict, cuda: bool, bf16_ok: bool) -> str:
    """The plan's precision where the device allows it: fp16 on GPUs without bf16, fp32 on a CPU (a smoke test)."""
    precision = setup["precision"]
    if not cuda:
        return "fp32"
    if precision.startswith("bf16") and not bf16_ok:
        return precision.replace("bf16", "fp16")
    return precision


def weights_dtype(setup: dict, cuda: bool, bf16_ok: bool) -> torch.dtype:
    """dtype the weights are loaded in: pure bf16/fp16 keep them in 16 bits, -mixed keeps fp32 master weights."""
    precision = runtime_precision(setup, cuda, bf16_ok)
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)


def compute_dtype(setup: dict, cuda: bool, bf16_ok: bool) -> torch.dtype:
    """dtype matmuls run in (QLoRA: what the 4-bit weights are dequantised to)."""
    precision = runtime_precision(setup, cuda, bf16_ok)
    if precision.startswith("bf16"):
        return torch.bfloat16
    return torch.float16 if precision.startswith("fp16") else torch.float32


def precision_flags(setup: dict, cuda: bool, bf16_ok: bool) -> dict:
    """Trainer autocast flags. Pure fp16 full fine-tuning gets no GradScaler (it cannot unscale fp16 gradients)."""
    precision = runtime_precision(setup, cuda, bf16_ok)
    fp16 = precision == "fp16-mixed" or (precision == "fp16" and setup["method"] != "full")
    return {"bf16": precision in ("bf16", "bf16-mixed"), "fp16": fp16}


OPTIMIZERS = {
    "adamw": "adamw_torch_fused",
    "adamw8bit": "adamw_bnb_8bit",
    "paged_adamw8bit": "paged_adamw_8bit",
    "adafactor": "adafactor",
    "sgd": "sgd",
    "sgd_momentum": "sgd",
    "lion": "lion_32bit",
}


def optimizer_kwargs(setup: dict, cuda: bool) -> dict:
    name = OPTIMIZERS[setup["optimizer"]]
    if name == "adamw_torch_fused" and not cuda:
        name = "adamw_torch"
    kwargs = {"optim": name}
    if setup["optimizer"] == "sgd_momentum":
        kwargs["optim_args"] = "momentum=0.9"
    return kwargs


def training_kwargs(cfg: dict, cuda: bool, bf16_ok: bool) -> dict:
    """The TrainingArguments every kind shares, from the plan's Setup and hyper-parameters."""
    setup, hyper = cfg["setup"], cfg["hyper"]
    return {
        "output_dir": cfg["output_dir"],
        "per_device_train_batch_size": setup["micro_batch"],
        "gradient_accumulation_steps": setup["grad_accum"],
        "learning_rate": hyper["learning_rate"],
        "num_train_epochs": hyper["epochs"],
        "max_steps": hyper["max_steps"],
        "warmup_steps": hyper["warmup_ratio"],  # below 1: a fraction of the steps
        "lr_scheduler_type": hyper["lr_scheduler"],
        "weight_decay": hyper["weight_decay"],
        "seed": hyper["seed"],
        "logging_steps": hyper["logging_steps"],
        "save_strategy": "steps",
        "save_steps": hyper["save_steps"],
        "activation_checkpointing": setup["grad_ckpt"],
        "use_cpu": not cuda,
        "report_to": "none",
        "disable_tqdm": True,  # progress goes out as JSON lines (Progress below)
        # tokens/s for the progress events; online RL kinds log their own token counts
        "include_num_input_tokens_seen": "non_padding" if cfg["train"] in ("sft", "reward", "dpo") else "no",
        **precision_flags(setup, cuda, bf16_ok),
        **optimizer_kwargs(setup, cuda),
    }


# ---------------------------------------------------------------- model: tiny, loading, quantization, LoRA

ATTENTION = {"sdpa": "sdpa", "flash": "flash_attention_2", "eager": "eager"}
TINY_SPECIALS = ["<|pad|>", "<|bos|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
# A plain template for tokenizers that have none, so conversational data still works.
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TINY_CORPUS = [
    "The quick brown fox jumps over the lazy dog. A small model learns the shape of text.",
    "안녕하세요. 작은 모델로 학습 과정을 빠르게 확인합니다. 한국어와 영어 문장을 함께 씁니다.",
    "user assistant system: question, answer, prompt, chosen, rejected, messages, content, role.",
]


def build_tiny_model(path: Path) -> Path:
    """A 2-layer random Llama (hidden 64) and a byte-level BPE tokenizer trained right here: no download.
    Built once per run folder, so every stage of the run shares the same vocabulary."""
    if (path / "config.json").is_file():
        return path
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024, min_frequency=1, special_tokens=TINY_SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    corpus = list(TINY_CORPUS)
    for data_file in sorted((HERE / "data").glob("*.jsonl")):
        corpus += data_file.read_text(encoding="utf-8").splitlines()
    bpe.train_from_iterator(corpus, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|bos|>", eos_token="<|end|>", pad_token="<|pad|>")
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    staging = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    LlamaForCausalLM(config).save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    try:
        staging.rename(path)
    except OSError:  # another process built it first
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
    return path


def model_source(cfg: dict) -> str:
    """What from_pretrained loads: the tiny model, an earlier stage's output, or the plan's model."""
    if cfg["base_from"]:
        if not Path(cfg["base_from"]).is_dir():
            sys.exit(f"error: this stage starts from {cfg['base_from']}, which does not exist yet: run that stage first")
        return usable_model(cfg["base_from"], cfg)
    if cfg["model"] == "tiny":
        return str(build_tiny_model(HERE / "tiny-model"))
    return usable_model(cfg["model"], cfg)


def usable_model(source: str, cfg: dict) -> str:
    """A folder holding a LoRA adapter is used through its merged copy (written now if missing)."""
    path = Path(source)
    if path.is_file():  # a config.json named as the model: its folder holds the model
        path = path.parent
        source = str(path)
    if (path / "merged" / "config.json").is_file():
        return str(path / "merged")
    if (path / "adapter_config.json").is_file():
        return str(save_merged(path, cfg))
    return source


def save_merged(adapter_dir: Path, cfg: dict) -> Path:
    """Fold a LoRA adapter into a full copy of its base model (<adapter_dir>/merged), so a later stage can load
    it as a plain model, quantized or not. Runs on the CPU in 16 bits (fp32 without CUDA)."""
    adapter = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    seq_cls = adapter.get("task_type") == "SEQ_CLS"
    cls = AutoModelForSequenceClassification if seq_cls else AutoModelForCausalLM
    cuda = torch.cuda.is_available()
    dtype = compute_dtype(cfg["setup"], cuda, cuda and torch.cuda.is_bf16_supported())
    extra = {"num_labels": 1} if seq_cls else {}
    base = cls.from_pretrained(adapter["base_model_name_or_path"], dtype=dtype, trust_remote_code=cfg["trust_remote_code"], **extra)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    target = adapter_dir / "merged"
    merged.save_pretrained(target)
    AutoTokenizer.from_pretrained(str(adapter_dir)).save_pretrained(target)
    print(f"merged the adapter in {adapter_dir} into {target}", file=sys.stderr)
    return target


def load_tokenizer(source: str, cfg: dict):
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=cfg["trust_remote_code"])
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.chat_template is None:
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
    return tokenizer


def bnb_kwargs(setup: dict, cuda: bool, bf16_ok: bool) -> dict:
    """QLoRA: 4-bit weights (nf4 or fp4), optional double quantisation of the constants, matmuls in compute_dtype."""
    kwargs = {
        "load_in_4bit": True,
        "bnb_4bit_quant_type": setup["quant_type"],
        "bnb_4bit_use_double_quant": setup["double_quant"],
        "bnb_4bit_compute_dtype": compute_dtype(setup, cuda, bf16_ok),
    }
    if setup["parallel"].startswith("fsdp"):  # FSDP shards the packed 4-bit weights as this dtype
        kwargs["bnb_4bit_quant_storage"] = compute_dtype(setup, cuda, bf16_ok)
    return kwargs


def model_kwargs(cfg: dict, cuda: bool, bf16_ok: bool) -> dict:
    """from_pretrained arguments: weight dtype, attention kernel, 4-bit quantization for QLoRA."""
    setup = cfg["setup"]
    kwargs = {
        "dtype": weights_dtype(setup, cuda, bf16_ok),
        "attn_implementation": ATTENTION[setup["attention"]],
        "trust_remote_code": cfg["trust_remote_code"],
    }
    if setup["method"] == "qlora":
        kwargs["dtype"] = compute_dtype(setup, cuda, bf16_ok)
        kwargs["quantization_config"] = BitsAndBytesConfig(**bnb_kwargs(setup, cuda, bf16_ok))
        if cuda and setup["parallel"] in ("none", "ddp"):  # each process quantizes its own copy on its GPU;
            kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}  # FSDP / ZeRO place shards themselves
    return kwargs


def load_model(cls, source: str, cfg: dict, cuda: bool, bf16_ok: bool, **extra):
    kwargs = {**model_kwargs(cfg, cuda, bf16_ok), **extra}
    model = cls.from_pretrained(source, **kwargs)
    setup = cfg["setup"]
    # SETUP is the set-up as priced (advisor: estimators/effective.py), e.g. no fp32 upcast under FSDP, which
    # flattens each layer into one dtype: the script does what it says and decides nothing of its own.
    if setup["method"] == "qlora" and setup["kbit_upcast"]:
        # peft's preparation: fp32 copies of the non-quantized weights (norms, embeddings, head), input grads on
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=setup["grad_ckpt"])
    elif setup["method"] == "qlora" and setup["grad_ckpt"]:
        # the same preparation without the upcast: checkpointed layers need inputs that require grads
        model.enable_input_require_grads()
    return model


def lora_kwargs(cfg: dict, task_type: str) -> dict:
    setup = cfg["setup"]
    return {
        "r": setup["lora_r"],
        "lora_alpha": setup["lora_alpha"],
        "lora_dropout": setup["lora_dropout"],
        "target_modules": cfg["lora_target_modules"],
        "task_type": task_type,
    }


def lora_config(cfg: dict, task_type: str) -> LoraConfig | None:
    """LoRA / QLoRA adapters on the plan's target modules; None for full fine-tuning."""
    if cfg["setup"]["method"] == "full":
        return None
    return LoraConfig(**lora_kwargs(cfg, task_type))


# ---------------------------------------------------------------- data

DATA_BUILDERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}


def load_data(spec: str, data_format: str):
    """The train split of a local file (.json/.jsonl/.csv/.parquet), a saved dataset folder, or a hub dataset,
    in the columns TRL expects for `data_format`."""
    checked = CONFIG.get("data")
    if checked and spec == checked["path"]:  # the file `advisor generate` checked: its own loader and mapping
        return normalise(load_checked(checked), data_format)
    path = Path(spec)
    if path.suffix.lower() in DATA_BUILDERS and path.is_file():
        dataset = load_dataset(DATA_BUILDERS[path.suffix.lower()], data_files=str(path), split="train")
    elif path.is_dir() and (path / "dataset_info.json").is_file():
        from datasets import load_from_disk

        dataset = load_from_disk(str(path))
    else:
        dataset = load_dataset(spec, split="train")
    return normalise(dataset, data_format)


def normalise(dataset, data_format: str):
    """Common layouts mapped to TRL's: Alpaca (instruction/input/output) and ShareGPT (conversations with
    from/value) become `messages`; TRL applies the tokenizer's chat template to conversational rows."""
    columns = set(dataset.column_names)
    if data_format == "instruction" and "messages" not in columns:
        if {"instruction", "output"} <= columns:

            def alpaca(row):
                prompt = row["instruction"] + (("\n\n" + row["input"]) if row.get("input") else "")
                return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": row["output"]}]}

            dataset = dataset.map(alpaca, remove_columns=sorted(columns))
        elif "conversations" in columns:
            roles = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}

            def sharegpt(row):
                return {"messages": [{"role": roles.get(turn["from"], turn["from"]), "content": turn["value"]} for turn in row["conversations"]]}

            dataset = dataset.map(sharegpt, remove_columns=sorted(columns))
    wanted = {
        "instruction": ({"messages"}, {"prompt", "completion"}, {"text"}),
        "preference": ({"chosen", "rejected"},),
        "prompt": ({"prompt"},),
        "text": ({"text"},),
    }[data_format]
    if not any(need <= set(dataset.column_names) for need in wanted):
        options = " or ".join("/".join(sorted(need)) for need in wanted)
        sys.exit(f"error: a {data_format} dataset needs the column(s) {options}; this one has {', '.join(dataset.column_names)}")
    return dataset


# ---------------------------------------------------------------- progress events, checkpoints, signals


class Interrupted(KeyboardInterrupt):
    """Raised once the checkpoint asked for by SIGINT/SIGTERM is on disk (or on a second signal)."""


class Progress(TrainerCallback):
    """Progress as JSON lines (stdout and <output_dir>/progress.jsonl):
    start {total_steps, resume_step}; log {step, total_steps, loss, learning_rate, tokens_per_s, peak_mem_gib, epoch};
    checkpoint {step, path}; end {status: completed | interrupted | failed, step, output_dir}.
    SIGINT/SIGTERM: finish the current step, save a checkpoint, stop (a second signal stops at once)."""

    def __init__(self, stage: str, output_dir: str):
        self.stage, self.output_dir = stage, Path(output_dir)
        self.main = int(os.environ.get("RANK", "0")) == 0
        self.resume_step = self.step = 0
        self.total = None
        self.training = self.stop_requested = False
        self._mark = (time.perf_counter(), 0.0)

    def emit(self, event: str, **fields) -> None:
        if not self.main:
            return
        line = json.dumps({"event": event, "stage": self.stage, **fields}, ensure_ascii=False)
        print(line, flush=True)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with open(self.output_dir / "progress.jsonl", "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        if self.training and not self.stop_requested:
            self.stop_requested = True
            print(f"{signal.Signals(signum).name}: saving a checkpoint after the current step", file=sys.stderr, flush=True)
            return
        raise Interrupted()

    def on_train_begin(self, args, state, control, **kwargs):
        self.training = True
        self.total = state.max_steps
        self.step = self.resume_step
        self._mark = (time.perf_counter(), float(state.num_input_tokens_seen or 0))
        self.emit("start", total_steps=self.total, resume_step=self.resume_step)

    def on_step_end(self, args, state, control, **kwargs):
        self.step = state.global_step
        if self.stop_requested:
            control.should_save = True
            control.should_training_stop = True

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        loss = logs.get("loss", logs.get("loss/policy_avg"))
        if loss is None:  # the end-of-training summary
            return
        now, tokens = time.perf_counter(), float(state.num_input_tokens_seen or logs.get("num_tokens") or 0)
        then, tokens_before = self._mark
        self._mark = (now, tokens)
        rate = (tokens - tokens_before) / (now - then) if tokens > tokens_before and now > then else None
        peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
        self.emit(
            "log",
            step=state.global_step,
            total_steps=self.total,
            loss=_finite(loss),
            learning_rate=_finite(logs.get("learning_rate", logs.get("lr"))),
            tokens_per_s=None if rate is None else round(rate, 1),
            peak_mem_gib=None if peak is None else round(peak, 3),
            epoch=_finite(state.epoch),
        )

    def on_save(self, args, state, control, **kwargs):
        self.emit("checkpoint", step=state.global_step, path=str(Path(args.output_dir) / f"checkpoint-{state.global_step}"))
        if self.stop_requested:
            raise Interrupted()


def _finite(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def run_guarded(progress: Progress, train) -> int:
    """Run `train()` with the signal handling and the end event; 130 when interrupted."""
    progress.install_signal_handlers()
    try:
        train()
    except KeyboardInterrupt:
        progress.emit("end", status="interrupted", step=progress.step, output_dir=str(progress.output_dir))
        print(f"interrupted at step {progress.step}; continue with --resume", file=sys.stderr)
        return 130
    except BaseException as exc:
        if not isinstance(exc, SystemExit) or exc.code not in (0, None):
            progress.emit("end", status="failed", step=progress.step, output_dir=str(progress.output_dir), error=str(exc)[:500])
        raise
    progress.emit("end", status="completed", step=progress.step, output_dir=str(progress.output_dir))
    return 0


# ---------------------------------------------------------------- training loop with resume


def fit(trainer, cfg: dict, args: argparse.Namespace, progress: Progress, tokenizer) -> None:
    """Train (from the last checkpoint with --resume), then save the final model or adapter to output_dir."""
    checkpoint = last_checkpoint(cfg["output_dir"]) if args.resume else None
    if args.resume and checkpoint is None:
        print(f"--resume: no checkpoint-* in {cfg['output_dir']}; starting from the beginning", file=sys.stderr)
    progress.resume_step = int(checkpoint.name.split("-")[1]) if checkpoint else 0
    for noisy in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(noisy)
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    progress.step = trainer.state.global_step
    progress.training = False
    trainer.save_model(cfg["output_dir"])
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(cfg["output_dir"])
        if cfg["save_merged"] and cfg["setup"]["method"] != "full":
            save_merged(Path(cfg["output_dir"]), cfg)


# ---------------------------------------------------------------- supervised fine-tuning


def trainer_config(cfg: dict, cuda: bool, bf16_ok: bool) -> SFTConfig:
    setup = cfg["setup"]
    return SFTConfig(**training_kwargs(cfg, cuda, bf16_ok), max_length=setup["seq_len"], packing=setup["packed"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = apply_overrides(CONFIG, args)
    cuda = torch.cuda.is_available()
    bf16_ok = cuda and torch.cuda.is_bf16_supported()
    progress = Progress(cfg["stage"], cfg["output_dir"])

    def train() -> None:
        set_seed(cfg["hyper"]["seed"])
        source = model_source(cfg)
        tokenizer = load_tokenizer(source, cfg)
        dataset = load_data(cfg["dataset"], cfg["data_format"])
        model = load_model(AutoModelForCausalLM, source, cfg, cuda, bf16_ok)
        trainer = SFTTrainer(
            model=model,
            args=trainer_config(cfg, cuda, bf16_ok),
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=lora_config(cfg, "CAUSAL_LM"),
            callbacks=[progress],
        )
        fit(trainer, cfg, args, progress, tokenizer)

    return run_guarded(progress, train)


if __name__ == "__main__":
    sys.exit(main())
