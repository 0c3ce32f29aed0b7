"""The helpers every training script of this run shares, as TRL keeps them in its library: the command line and
this device, model and tokenizer loading (the tiny test model, 4-bit quantization, LoRA merging), data loading,
JSON progress events with signal handling and checkpoint resume, and the reward model of online RL stages.

Written by `advisor generate`, the same in every run folder. Each train_<stage>.py beside it imports what it uses;
its CONFIG, TRAINING, MODEL, LORA and QUANT say what that stage trains. Nothing here decides a set-up: the plan's
values come in as they are, changed only where this device cannot run them (for_device).
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
from dataclasses import dataclass
from pathlib import Path

import torch
from datasets import load_dataset
from peft import LoraConfig, PeftModel, prepare_model_for_kbit_training
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, BitsAndBytesConfig, TrainerCallback, set_seed
from transformers.trainer_callback import PrinterCallback, ProgressCallback


# ---------------------------------------------------------------- command line, paths, this device


def parse_args(train: str, description: str, argv: list[str] | None = None) -> argparse.Namespace:
    """The flags of every script (`train`: CONFIG["train"], which adds the reward flags of online RL)."""
    parser = argparse.ArgumentParser(description=description)
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
    if train in ("grpo", "ppo"):
        parser.add_argument("--reward-model", help="reward model folder or hub id (GRPO without one uses a Python reward function)")
    if train == "grpo":
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


def apply_overrides(config: dict, training: dict, args: argparse.Namespace, here: Path) -> tuple[dict, dict]:
    """CONFIG and TRAINING with the command-line overrides applied; every local path made absolute (CONFIG's
    against `here`, the script's folder; the flags' against the current directory)."""
    cfg, training = copy.deepcopy(config), copy.deepcopy(training)
    cwd = Path.cwd()
    for key in ("model", "dataset"):
        cfg[key] = _location(cfg[key], here)
    for key in ("base_from", "reward_model"):  # output folders of earlier stages of this run
        if key in cfg:
            cfg[key] = str((here / cfg[key]).resolve()) if cfg[key] else ""
    cfg["output_dir"] = str((here / cfg["output_dir"]).resolve())
    if cfg.get("reward_fn"):  # a relative file is found next to the script
        path, _, name = cfg["reward_fn"].rpartition(":")
        cfg["reward_fn"] = f"{_location(path, here)}:{name}"
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
    if args.epochs is not None:
        training["num_train_epochs"] = args.epochs
    if args.max_steps is not None:
        training["max_steps"] = args.max_steps
    if args.batch_size is not None:
        for key in ("per_device_train_batch_size", "local_rollout_forward_batch_size"):  # PPO rolls out in micro-batches too
            if key in training:
                training[key] = args.batch_size
    if args.learning_rate is not None:
        training["learning_rate"] = args.learning_rate
    if args.seq_len is not None:
        if "max_length" in training:
            training["max_length"] = args.seq_len
        else:  # online RL: prompt and completion together
            cfg["max_length"] = args.seq_len
    if args.save_steps is not None:
        training["save_steps"] = args.save_steps
    return cfg, training


def last_checkpoint(output_dir: str) -> Path | None:
    steps = []
    for child in Path(output_dir).glob("checkpoint-*"):
        suffix = child.name.split("-", 1)[1]
        if child.is_dir() and suffix.isdigit():
            steps.append((int(suffix), child))
    return max(steps)[1] if steps else None


QUANT_DTYPES = ("bnb_4bit_compute_dtype", "bnb_4bit_quant_storage")  # QUANT values that name a dtype


def device_dtype(name: str, cuda: bool, bf16_ok: bool) -> torch.dtype:
    """A dtype the plan names, on this device: fp32 on a CPU (a smoke test), fp16 for bf16 on a GPU without bf16."""
    if not cuda:
        return torch.float32
    if name == "bfloat16" and not bf16_ok:
        return torch.float16
    return getattr(torch, name)


def for_device(training: dict, model: dict, quant: dict | None, full: bool, cuda: bool, bf16_ok: bool) -> tuple[dict, dict, dict | None]:
    """TRAINING, MODEL and QUANT on this device: a CPU runs in fp32 with the plain AdamW and without activation
    offloading (TRL offloads from an accelerator to host RAM: on a CPU there is nothing to offload); a GPU without
    bf16 runs fp16 where the plan says bf16 (pure 16-bit full fine-tuning without a GradScaler, which cannot unscale
    fp16 gradients). Dtype names become torch dtypes."""
    training = dict(training, use_cpu=not cuda)
    if not cuda:
        training.update(bf16=False, fp16=False)
        if training.get("activation_offloading"):
            training["activation_offloading"] = False
        if training["optim"] == "adamw_torch_fused":
            training["optim"] = "adamw_torch"
    elif training["bf16"] and not bf16_ok:
        training.update(bf16=False, fp16=not (full and model["dtype"] == "bfloat16"))
    model = dict(model, dtype=device_dtype(model["dtype"], cuda, bf16_ok))
    if quant is not None:
        quant = {key: device_dtype(value, cuda, bf16_ok) if key in QUANT_DTYPES else value for key, value in quant.items()}
    return training, model, quant


@dataclass
class Run:
    """One stage as it runs on this machine: what a script's main() works with."""

    here: Path  # the script's folder
    args: argparse.Namespace
    config: dict  # CONFIG, flags applied, local paths absolute
    training: dict  # keyword arguments of the kind's TRL config, output_dir included
    model: dict  # MODEL: from_pretrained keyword arguments (torch dtypes)
    quant: dict | None  # QUANT: BitsAndBytesConfig keyword arguments (QLoRA)
    lora: LoraConfig | None  # LORA as a LoraConfig; None for full fine-tuning
    compute_dtype: torch.dtype  # matmuls: merged adapters, reward and value models load in it
    cuda: bool
    progress: Progress


def start(here: Path, doc: str, argv: list[str] | None, *, config: dict, training: dict, model: dict, lora: dict | None, quant: dict | None) -> Run:
    """A script's blocks, its command line and this device made into a Run (`doc`: the script's docstring)."""
    args = parse_args(config["train"], doc.splitlines()[0], argv)
    cfg, training = apply_overrides(config, training, args, here)
    training["output_dir"] = cfg["output_dir"]
    cuda = torch.cuda.is_available()
    bf16_ok = cuda and torch.cuda.is_bf16_supported()
    training, model, quant = for_device(training, model, quant, lora is None, cuda, bf16_ok)
    return Run(
        here=here,
        args=args,
        config=cfg,
        training=training,
        model=model,
        quant=quant,
        lora=LoraConfig(**lora) if lora is not None else None,
        compute_dtype=device_dtype(cfg["compute_dtype"], cuda, bf16_ok),
        cuda=cuda,
        progress=Progress(cfg["stage"], cfg["output_dir"]),
    )


# ---------------------------------------------------------------- model: tiny, loading, quantization, merging

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


def build_tiny_model(path: Path, data: Path) -> Path:
    """A 2-layer random Llama (hidden 64) and a byte-level BPE tokenizer trained right here on the run's `data`
    folder: no download. Built once per run folder, so every stage of the run shares the same vocabulary."""
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
    for data_file in sorted(data.glob("*.jsonl")):
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


def model_source(run: Run) -> str:
    """What from_pretrained loads: the tiny model, an earlier stage's output, or the plan's model."""
    cfg = run.config
    if cfg["base_from"]:
        if not Path(cfg["base_from"]).is_dir():
            sys.exit(f"error: this stage starts from {cfg['base_from']}, which does not exist yet: run that stage first")
        return usable_model(cfg["base_from"], run)
    if cfg["model"] == "tiny":
        return str(build_tiny_model(run.here / "tiny-model", run.here / "data"))
    return usable_model(cfg["model"], run)


def usable_model(source: str, run: Run) -> str:
    """A folder holding a LoRA adapter is used through its merged copy (written now if missing)."""
    path = Path(source)
    if path.is_file():  # a config.json named as the model: its folder holds the model
        path = path.parent
        source = str(path)
    if (path / "merged" / "config.json").is_file():
        return str(path / "merged")
    if (path / "adapter_config.json").is_file():
        return str(save_merged(path, run))
    return source


def save_merged(adapter_dir: Path, run: Run) -> Path:
    """Fold a LoRA adapter into a full copy of its base model (<adapter_dir>/merged), so a later stage can load
    it as a plain model, quantized or not. Runs on the CPU in the compute dtype (fp32 without CUDA)."""
    adapter = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    seq_cls = adapter.get("task_type") == "SEQ_CLS"
    cls = AutoModelForSequenceClassification if seq_cls else AutoModelForCausalLM
    extra = {"num_labels": 1} if seq_cls else {}
    base = cls.from_pretrained(adapter["base_model_name_or_path"], dtype=run.compute_dtype, trust_remote_code=run.model["trust_remote_code"], **extra)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    target = adapter_dir / "merged"
    merged.save_pretrained(target)
    AutoTokenizer.from_pretrained(str(adapter_dir)).save_pretrained(target)
    print(f"merged the adapter in {adapter_dir} into {target}", file=sys.stderr)
    return target


def load_tokenizer(source: str, run: Run):
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=run.model["trust_remote_code"])
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.chat_template is None:
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
    return tokenizer


def model_kwargs(run: Run) -> dict:
    """from_pretrained arguments: MODEL, and for QLoRA QUANT as a BitsAndBytesConfig (a new one per model)."""
    kwargs = dict(run.model)
    if run.quant is not None:
        kwargs["quantization_config"] = BitsAndBytesConfig(**run.quant)
        if run.cuda and run.config["kbit_device_map"]:  # each process quantizes its own copy on its GPU;
            kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}  # FSDP / ZeRO place shards themselves
    return kwargs


def load_model(cls, source: str, run: Run, **extra):
    model = cls.from_pretrained(source, **{**model_kwargs(run), **extra})
    gradient_checkpointing = run.training["activation_checkpointing"]
    # CONFIG["kbit_upcast"] is the set-up as priced (advisor: estimators/effective.py), e.g. no fp32 upcast under
    # FSDP, which flattens each layer into one dtype: the script does what it says and decides nothing of its own.
    if run.quant is not None and run.config["kbit_upcast"]:
        # peft's preparation: fp32 copies of the non-quantized weights (norms, embeddings, head), input grads on
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    elif run.quant is not None and gradient_checkpointing:
        # the same preparation without the upcast: checkpointed layers need inputs that require grads
        model.enable_input_require_grads()
    return model


# ---------------------------------------------------------------- data

DATA_BUILDERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}


def load_data(spec: str, data_format: str, checked: dict | None = None, load_checked=None):
    """The train split of a local file (.json/.jsonl/.csv/.parquet), a saved dataset folder, or a hub dataset,
    in the columns TRL expects for `data_format`. `checked`: CONFIG["data"], the file `advisor generate` checked,
    read by the script's own `load_checked` (its loader and mapping)."""
    if checked and spec == checked["path"]:
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


def run_guarded(run: Run, train) -> int:
    """Seed, then run `train()` with the signal handling and the end event; 130 when interrupted."""
    progress = run.progress
    progress.install_signal_handlers()
    try:
        set_seed(run.training["seed"])
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


def resume_checkpoint(run: Run) -> Path | None:
    """With --resume, the last checkpoint-* of the output folder (None, said, when there is none)."""
    output_dir = run.config["output_dir"]
    checkpoint = last_checkpoint(output_dir) if run.args.resume else None
    if run.args.resume and checkpoint is None:
        print(f"--resume: no checkpoint-* in {output_dir}; starting from the beginning", file=sys.stderr)
    run.progress.resume_step = int(checkpoint.name.split("-")[1]) if checkpoint else 0
    if checkpoint and run.training["optim"].startswith("galore"):
        # GaLore's optimizer state holds its projector objects, which torch.load(weights_only=True) refuses unless allowed
        from galore_torch.galore_projector import GaLoreProjector

        torch.serialization.add_safe_globals([GaLoreProjector])
    return checkpoint


def quiet(trainer) -> None:
    """Progress goes out as JSON lines only: the trainer's own printing callbacks go."""
    for noisy in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(noisy)


def save_final(trainer, run: Run, tokenizer) -> None:
    """The final model or adapter (and tokenizer) in output_dir; its merged copy when a later stage loads it."""
    run.progress.training = False
    output_dir = run.config["output_dir"]
    trainer.save_model(output_dir)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(output_dir)
        if run.config["save_merged"] and run.lora is not None:
            save_merged(Path(output_dir), run)


def fit(trainer, run: Run, tokenizer) -> None:
    """Train (from the last checkpoint with --resume), then save the final model or adapter to output_dir."""
    checkpoint = resume_checkpoint(run)
    quiet(trainer)
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    run.progress.step = trainer.state.global_step
    save_final(trainer, run, tokenizer)


# ---------------------------------------------------------------- reward model for online RL


def reward_source(run: Run) -> str:
    """The reward model to score completions with ("" when the stage uses a Python reward function)."""
    source = run.config["reward_model"]
    if not source:
        return ""
    if Path(source).is_absolute() and not Path(source).is_dir():
        sys.exit(f"error: the reward model {source} does not exist yet: train it first (its stage's script)")
    return usable_model(source, run)


def load_reward_model(source: str, run: Run):
    """Scalar-head model used for inference only, in the compute dtype (4-bit as well for QLoRA plans)."""
    kwargs = dict(model_kwargs(run), dtype=run.compute_dtype)
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1, **kwargs)
    tokenizer = load_tokenizer(source, run)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer
