"""The configuration matrix behind estimators/calibration/traces.jsonl.

Each configuration is traced in its own process (`advisor measure --mode trace --write`), so a failure or a
memory spike stays contained and rows land in the file as they finish. Run it in the background:

    nohup .venv/bin/python bench/trace_all.py > /tmp/trace_all.log 2>&1 &
    .venv/bin/python bench/trace_all.py --only llama-3.1-8b      # a subset (substring of the label)
    .venv/bin/python bench/trace_all.py --list

Each trace stays within about 2 minutes on 2 CPU cores (70B models at 1-2k tokens included).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (model, flags). Defaults: sft, bf16, adamw, micro-batch 1, seq 2048, LoRA r16 all-linear, GC on for LoRA/QLoRA,
# loss fused (TRL's chunked log-prob head, what the generated scripts run).
# The HF causal-LM loss over B x S x V logits (--loss full: what the published measurements ran).
FULL_LOSS: list[tuple[str, str]] = [
    # Llama 3 / 3.1 / 3.2
    ("llama-3.1-8b", "--method lora"),
    ("llama-3.1-8b", "--method lora --no-grad-ckpt"),
    ("llama-3.1-8b", "--method qlora"),
    ("llama-3.1-8b", "--method full --no-grad-ckpt"),
    ("llama-3.1-8b", "--method full --grad-ckpt"),
    ("llama-3.1-8b", "--method full --precision bf16-mixed --seq-len 1024 --grad-ckpt"),
    ("llama-3.1-8b", "--method lora --seq-len 8192"),
    ("llama-3.1-8b", "--method qlora --seq-len 4096 --micro-batch 4"),
    ("llama-3.1-8b", "--method lora --seq-len 256 --micro-batch 16"),
    ("llama-3.2-1b", "--method full --micro-batch 4 --no-grad-ckpt"),
    ("llama-2-7b", "--method full --precision fp32 --seq-len 512 --no-grad-ckpt"),
    ("llama-3.2-1b", "--method full --optimizer adafactor --seq-len 1024 --micro-batch 2"),
    ("llama-3.2-1b", "--method full --optimizer adamw8bit --seq-len 1024 --micro-batch 2"),
    ("llama-3.2-1b", "--method lora --seq-len 1024 --micro-batch 4 --grad-accum 4"),
    ("llama-3.2-3b", "--method lora --seq-len 1024 --micro-batch 16"),
    ("llama-3.2-3b", "--method full --precision bf16-mixed --micro-batch 2 --grad-ckpt"),
    ("llama-3.2-3b", "--method lora --lora-targets qv --seq-len 768 --micro-batch 4 --no-grad-ckpt"),
    ("llama-3.1-70b", "--method qlora"),
    ("llama-3.1-70b", "--method lora --seq-len 1024"),
    # Llama 2
    ("llama-2-7b", "--method lora --lora-targets qv --seq-len 4096 --micro-batch 2"),
    ("llama-2-7b", "--method qlora --micro-batch 4"),
    ("llama-2-7b", "--method full --seq-len 512 --micro-batch 8 --grad-ckpt"),
    ("llama-2-13b", "--method qlora"),
    ("llama-2-13b", "--method lora --seq-len 1024 --micro-batch 2 --no-grad-ckpt"),
    ("llama-2-70b", "--method qlora --seq-len 4096"),
    # Mistral
    ("mistral-7b-v0.1", "--method lora --lora-targets attention --seq-len 4096"),
    ("mistral-7b-v0.1", "--method qlora --seq-len 4096 --micro-batch 2"),
    ("mistral-7b-v0.1", "--method full --seq-len 4096 --grad-ckpt"),
    ("mistral-7b-v0.1", "--method lora --precision fp16"),
    ("mistral-7b-v0.3", "--method lora --micro-batch 8"),
    ("mistral-nemo-12b", "--method qlora"),
    # Qwen 2.5 / Qwen 3
    ("qwen2.5-0.5b", "--method full --micro-batch 8 --no-grad-ckpt"),
    ("qwen2.5-0.5b", "--method lora --seq-len 4096 --micro-batch 4 --no-grad-ckpt"),
    ("qwen2.5-1.5b", "--method full --precision bf16-mixed --seq-len 1024 --micro-batch 4 --grad-ckpt"),
    ("qwen2.5-1.5b", "--method full --optimizer sgd --seq-len 1024 --micro-batch 2 --no-grad-ckpt"),
    ("qwen2.5-3b", "--method full --micro-batch 2 --grad-ckpt"),
    ("qwen2.5-7b", "--method qlora --micro-batch 2"),
    ("qwen2.5-7b", "--method lora --seq-len 8192"),
    ("qwen2.5-14b", "--method qlora --seq-len 1024 --micro-batch 2"),
    ("qwen3-0.6b", "--method full --micro-batch 4 --no-grad-ckpt"),
    ("qwen3-8b", "--method lora --seq-len 4096"),
    # Gemma 2 (sdpa is refused by transformers: flash or eager)
    ("gemma-2-2b", "--method lora --attention flash --micro-batch 2"),
    ("gemma-2-2b", "--method full --attention flash --seq-len 1024 --micro-batch 2 --no-grad-ckpt"),
    ("gemma-2-2b", "--method lora --attention eager --seq-len 512 --micro-batch 4 --no-grad-ckpt"),
    ("gemma-2-9b", "--method qlora --attention flash"),
    ("gemma-2-9b", "--method lora --attention eager --seq-len 1024"),
    # Phi-3
    ("phi-3-mini-4k", "--method lora --micro-batch 2"),
    ("phi-3-mini-4k", "--method qlora --seq-len 4096"),
    ("phi-3-mini-4k", "--method full --seq-len 1024 --micro-batch 4 --grad-ckpt"),
    ("phi-3-medium-4k", "--method qlora"),
    # GPT-2 (LayerNorm, GELU, learned positions, dropout)
    ("gpt2", "--method full --seq-len 1024 --micro-batch 8 --no-grad-ckpt"),
    ("gpt2", "--method full --precision fp32 --seq-len 512 --micro-batch 16 --no-grad-ckpt"),
    ("gpt2-medium", "--method full --precision bf16-mixed --seq-len 1024 --micro-batch 4 --no-grad-ckpt"),
    ("gpt2-xl", "--method lora --seq-len 1024 --micro-batch 4"),
    # MoE (peft's all-linear also targets transformers-5 fused experts, which needs lora_dropout 0: attention LoRA)
    ("mixtral-8x7b", "--method lora --lora-targets attention --seq-len 1024"),
    # QLoRA with k-bit upcast leaves transformers-5 fused experts in fp32, which grouped_mm refuses: no upcast
    ("mixtral-8x7b", "--method qlora --lora-targets attention --no-kbit-upcast"),
    ("qwen1.5-moe-a2.7b", "--method lora --lora-targets attention --micro-batch 2"),
    ("qwen1.5-moe-a2.7b", "--method full --seq-len 1024 --grad-ckpt"),
    # small models, long batches
    ("tinyllama-1.1b", "--method lora --micro-batch 8 --no-grad-ckpt"),
    ("smollm2-1.7b", "--method full --micro-batch 2 --grad-ckpt"),
    # kernels, dtypes and optimizers off the main path
    ("llama-3.2-1b", "--method lora --attention eager --seq-len 1024 --micro-batch 2 --no-grad-ckpt"),
    ("qwen2.5-0.5b", "--method full --precision fp32 --seq-len 512 --micro-batch 2 --no-grad-ckpt"),
    ("llama-3.2-1b", "--method full --optimizer paged_adamw8bit --seq-len 1024 --micro-batch 2"),
    ("llama-3.2-1b", "--method full --optimizer lion --seq-len 1024 --micro-batch 2"),
    ("qwen3-8b", "--method qlora --micro-batch 2"),
    ("gemma-2-9b", "--method full --attention flash --seq-len 1024 --grad-ckpt"),
    ("llama-3.1-8b", "--method qlora --no-kbit-upcast"),
    ("llama-3.1-8b", "--method lora --lora-dropout 0"),
]
# TRL's fused LM head (--loss fused): 128k (Llama 3), 152k (Qwen 2.5/3) and 256k (Gemma 2) vocabularies, tied and
# untied heads, every head dtype (bf16, fp32 under mixed precision and QLoRA's upcast, fp32 training).
FUSED: list[tuple[str, str]] = [
    ("llama-3.1-8b", "--method lora"),
    ("llama-3.1-8b", "--method full --no-grad-ckpt"),
    ("llama-3.1-8b", "--method qlora --seq-len 8192"),
    ("llama-3.1-8b", "--method qlora --no-kbit-upcast"),
    ("llama-3.2-1b", "--method full --micro-batch 4 --no-grad-ckpt"),
    ("llama-3.2-3b", "--method lora --seq-len 1024 --micro-batch 8 --no-grad-ckpt"),
    ("llama-2-7b", "--method full --precision fp32 --seq-len 512 --no-grad-ckpt"),
    ("qwen2.5-0.5b", "--method full --seq-len 512 --micro-batch 8 --no-grad-ckpt"),
    ("qwen2.5-1.5b", "--method full --precision bf16-mixed --seq-len 1024 --micro-batch 4 --grad-ckpt"),
    ("qwen2.5-7b", "--method lora --seq-len 4096 --micro-batch 2"),
    ("qwen3-8b", "--method qlora --micro-batch 2"),
    ("gemma-2-2b", "--method lora --attention flash --micro-batch 2"),
    ("gemma-2-2b", "--method full --attention flash --seq-len 1024 --micro-batch 2 --no-grad-ckpt"),
    ("gemma-2-9b", "--method qlora --attention flash"),
    ("mistral-7b-v0.3", "--method lora --seq-len 1024 --micro-batch 4 --no-grad-ckpt"),
    ("phi-3-mini-4k", "--method lora --seq-len 4096"),
    ("gpt2", "--method full --seq-len 1024 --micro-batch 8 --no-grad-ckpt"),
]
# Preference training (advisor/measure/prefs.py): --train reward (seq-cls model, chosen + rejected = 2 x micro-batch
# sequences) and --train dpo (fused head, reference forward: LoRA adapter disabled, full a frozen copy).
PREFERENCE: list[tuple[str, str]] = [
    ("llama-3.2-1b", "--train reward --method full --seq-len 1024 --micro-batch 2 --no-grad-ckpt"),
    ("llama-3.1-8b", "--train reward --method lora"),
    ("qwen2.5-0.5b", "--train reward --method full --micro-batch 4 --grad-ckpt"),
    ("mistral-7b-v0.3", "--train reward --method lora --seq-len 512 --micro-batch 2 --no-grad-ckpt"),
    ("llama-3.1-8b", "--train dpo --method lora"),
    ("llama-3.2-1b", "--train dpo --method full --seq-len 1024 --micro-batch 2 --no-grad-ckpt"),
    ("qwen2.5-0.5b", "--train dpo --method full --micro-batch 2 --grad-ckpt"),
    ("mistral-7b-v0.3", "--train dpo --method lora --seq-len 1024 --no-grad-ckpt"),
    ("qwen2.5-1.5b", "--train dpo --method lora --seq-len 1024 --micro-batch 4"),
    ("llama-3.1-8b", "--train dpo --method full --seq-len 1024 --grad-ckpt"),
]
# Encoders fine-tuned for sequence classification (AutoModelForSequenceClassification, the config's labels, class
# labels per sequence, dropout on): the model's own CrossEntropyLoss, so --loss full. BERT-large's fp32 and fp16-mixed
# eager rows are the set-ups of the V100 guide (the transformers docs' rows in published_calibration.csv).
ENCODER: list[tuple[str, str]] = [
    ("bert-large-uncased", "--method full --precision fp32 --attention eager --micro-batch 4 --seq-len 512 --no-grad-ckpt"),
    ("bert-large-uncased", "--method full --precision fp16-mixed --attention eager --micro-batch 4 --seq-len 512 --no-grad-ckpt"),
    ("bert-large-uncased", "--method full --precision bf16 --attention sdpa --micro-batch 8 --seq-len 512 --grad-ckpt"),
    ("bert-base-uncased", "--method lora --lora-targets qv --precision bf16 --micro-batch 16 --seq-len 512"),
    ("bert-base-uncased", "--method qlora --lora-targets all-linear --micro-batch 8 --seq-len 512"),
    ("roberta-base", "--method full --precision bf16 --micro-batch 8 --seq-len 512 --no-grad-ckpt"),
]
MATRIX: list[tuple[str, str]] = (
    [(m, f"{f} --loss full") for m, f in FULL_LOSS]
    + [(m, f"{f} --loss fused") for m, f in FUSED]
    + [(m, f"{f} --loss fused") for m, f in PREFERENCE]
    + [(m, f"{f} --loss full") for m, f in ENCODER]
)


def label(model: str, flags: str) -> str:
    return f"{model} {flags}".strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="run configurations whose label contains this text")
    ap.add_argument("--list", action="store_true", help="list the configurations and exit")
    ap.add_argument("--start", type=int, default=1, help="start at this configuration number (1-based)")
    ap.add_argument("--out", default="", help="JSONL file (default: estimators/calibration/traces.jsonl)")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per configuration")
    args = ap.parse_args()
    todo = [(m, f) for m, f in MATRIX[args.start - 1 :] if args.only in label(m, f)]
    if args.list:
        for m, f in todo:
            print(label(m, f))
        return 0
    failed = 0
    for i, (model, flags) in enumerate(todo, 1):
        cmd = [sys.executable, "-m", "advisor", "measure", "--model", model, "--mode", "trace", *flags.split()]
        cmd += ["--out", args.out] if args.out else ["--write"]
        t0 = time.time()
        try:
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=args.timeout)
            ok = proc.returncode == 0
            tail = (proc.stdout if ok else proc.stderr).strip().splitlines()[-3:]
        except subprocess.TimeoutExpired:
            ok, tail = False, ["timed out"]
        failed += not ok
        status = "ok" if ok else "FAILED"
        print(f"[{i}/{len(todo)}] {status} {time.time() - t0:6.1f}s  {label(model, flags)}", flush=True)
        if not ok:
            print("    " + "\n    ".join(tail), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
