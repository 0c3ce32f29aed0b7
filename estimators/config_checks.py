"""Sanity checks on what a user hands the estimator as a model: the text of --model and the config.json it names.

spec_from_hf_config checks that the keys it needs are there and positive; these checks add what a hostile or
broken file can still get past that: numbers far outside any real model (a billion layers, a trillion-token
vocabulary: the estimate would be a meaningless 1e20 GiB, or overflow), booleans written as strings
("tie_word_embeddings": "yes" is true in Python and silently ties), zero key/value heads, numbers with thousands
of digits and JSON nested thousands deep (both raise deep inside the json module, not as JSONDecodeError).
Every problem is one EstimateError line naming the file, the field and the range it must be in.

The ranges are wide on purpose: each upper bound is several times the largest published model's value (noted
per row), so no real config is refused and no absurd one gets through.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .errors import EstimateError
from .gpu_names import shown

# field -> (lowest, highest, why the top is where it is). Integers only; a key absent from the config is skipped
# (the family's defaults apply and were checked when the table was written).
INT_RANGES: dict[str, tuple[int, int, str]] = {
    "hidden_size": (1, 131_072, "Llama 3.1 405B: 16,384"),
    "n_embd": (1, 131_072, "GPT-2 XL: 1,600"),
    "intermediate_size": (1, 1_048_576, "Llama 3.1 405B: 53,248"),
    "n_inner": (1, 1_048_576, "GPT-2: 4 x n_embd"),
    "moe_intermediate_size": (1, 1_048_576, "Qwen3-235B-A22B: 1,536"),
    "shared_expert_intermediate_size": (0, 1_048_576, "Qwen2-57B-A14B: 20,480"),
    "num_hidden_layers": (1, 1_024, "Llama 3.1 405B: 126"),
    "n_layer": (1, 1_024, "GPT-2 XL: 48"),
    "num_attention_heads": (1, 1_024, "Llama 3.1 405B: 128"),
    "n_head": (1, 1_024, "GPT-2 XL: 25"),
    "num_key_value_heads": (1, 1_024, "at most the attention heads; Llama 3.1 405B: 8"),
    "head_dim": (1, 2_048, "Gemma 2: 256"),
    "vocab_size": (1, 16_777_216, "Gemma 3: 262,208"),
    "max_position_embeddings": (1, 134_217_728, "Llama 4 Scout: 10,485,760"),
    "n_positions": (1, 134_217_728, "GPT-2: 1,024"),
    "sliding_window": (0, 134_217_728, "Mistral 7B v0.1: 4,096"),
    "num_experts": (1, 65_536, "DeepSeek-V3: 256"),
    "num_local_experts": (1, 65_536, "Mixtral 8x22B: 8"),
    "num_experts_per_tok": (1, 65_536, "Qwen3-235B-A22B: 8"),
}
# JSON booleans in the file (null: the family's default); a string such as "yes" or "false" is refused
BOOL_KEYS = ("tie_word_embeddings", "attention_bias", "mlp_bias", "qkv_bias", "use_sliding_window")
# finite non-negative numbers (null or absent: off)
FLOAT_KEYS = ("final_logit_softcapping", "attn_logit_softcapping")

_MAX_FILE_BYTES = 16 * 1024 * 1024  # a config.json is a few kB; a larger file is not one
_MAX_PATH_PART = 255  # bytes in one file-name component on Linux/macOS filesystems


def check_model_text(text: str) -> None:
    """A --model value that cannot name anything: control characters or a path part longer than any
    filesystem allows (the lookup would fail inside os.stat with 'File name too long')."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise EstimateError(f"model name {shown(text)} contains control characters")
    if any(len(part.encode("utf-8", "surrogatepass")) > _MAX_PATH_PART for part in text.split("/")):
        raise EstimateError(f"model name {shown(text)} is {len(text)} characters long: not a catalog key, hub id or path (see `advisor models`)")


def parse_config_text(text: str, path: Path | str) -> Any:
    """json.loads with every failure as one EstimateError naming the file. Any JSON value: spec_from_hf_config
    refuses one that is not an object."""
    if len(text) > _MAX_FILE_BYTES:
        raise EstimateError(f"{path}: {len(text):,} characters is not a config.json (those are a few kB)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise EstimateError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except RecursionError:
        raise EstimateError(f"{path}: JSON nested too deeply to be a config.json") from None
    except ValueError as e:  # an integer of more than sys.get_int_max_str_digits() (4300) digits
        raise EstimateError(f"{path}: a number in the file is too long ({str(e).split(':')[0]})") from None


def check_config(config: dict, where: str) -> None:
    """Refuse values no real model has; one line naming the field and its range."""
    for key, (low, high, example) in INT_RANGES.items():
        if key not in config or config[key] is None:
            continue
        value = config[key]
        kind = "a positive integer" if low == 1 else "a whole number >= 0"
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise EstimateError(f"{where}: {key} must be {kind} (at most {high:,}), got {_value(value)}")
        if value > high:
            raise EstimateError(f"{where}: {key} {_value(value)} is outside {low:,}..{high:,} ({example})")
    for key in BOOL_KEYS:
        if key in config and config[key] is not None and not isinstance(config[key], bool):
            raise EstimateError(f"{where}: {key} must be true or false, got {_value(config[key])}")
    for key in FLOAT_KEYS:
        value = config.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise EstimateError(f"{where}: {key} must be a finite number >= 0, got {_value(value)}")
    heads, kv = config.get("num_attention_heads"), config.get("num_key_value_heads")
    if isinstance(heads, int) and isinstance(kv, int) and kv > heads:
        raise EstimateError(f"{where}: num_key_value_heads {kv} exceeds num_attention_heads {heads}")


def _value(value: object) -> str:
    """A config value for an error line: short, one line, never a 4000-digit number in full."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**15:
        return f"a {len(str(abs(value)))}-digit number"
    if isinstance(value, str):
        return shown(value, 30)
    text = json.dumps(value, allow_nan=True) if isinstance(value, (int, float, bool, type(None))) else type(value).__name__
    return shown(text, 30)[1:-1]
