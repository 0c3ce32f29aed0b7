"""GPU names as people type them, resolved against the GPU table (rules/gpus.toml).

Accepted, in this order:
  1. a table id or full name:            rtx4090, a100-80gb, "NVIDIA GeForce RTX 4090 24GB"
  2. a model as people say it:           4090, 3060ti, "rtx 3060 ti", a100 80gb, "a100 40"
     or as nvidia-smi / rocm-smi print it: "NVIDIA GeForce RTX 4090", "NVIDIA A100-SXM4-80GB",
                                         "Tesla V100-SXM2-16GB", "NVIDIA H100 80GB HBM3", "AMD Instinct MI300X"
  3. a memory size:                      24, 24GB, "24 GB", 24G  (the size the card is sold as)
                                         23.5GiB                  (usable memory exactly as given)

A model with several memory variants in the table and no size given (a100: 40 GB and 80 GB) is an error that
lists the variants: the answer (QLoRA or full fine-tuning, fits or not) depends on the variant, and guessing the
larger one would promise memory the user may not have. The message is one short line so the wizard's footer
shows it whole.

What "24GB" means. Cards are sold by the binary size of their memory chips: a "24 GB" RTX 4090 has 24 GiB of
GDDR6X, of which a training process can use 23.65 GiB (the table's memory_gib, from PyTorch's "total capacity"),
which is more than 24e9 bytes (22.35 GiB). So a size in GB (or a bare number) is taken as the size on the box,
N GiB of chips, times the share of the chips a process can use; that share is the median of memory_gib / sold
size over the table's cards (0.985 today: 24 GB -> 23.6 GiB usable, like the 4090's 23.65). Cards with ECC on
keep more (an L4 24GB has 22.03 GiB): name the card to get its exact figure. A size in GiB is taken as the usable
memory itself (the figure PyTorch prints), with no deduction.
"""

from __future__ import annotations

import math
import re
import unicodedata

from .errors import EstimateError
from .gpu_card import Gpu

# Words that name a vendor, brand or form factor but not which chip (and so not how much memory): dropped before
# matching. "nvl" and "laptop" are kept on purpose: an H100 NVL (94 GB) and a laptop RTX 4090 (16 GB) are other cards.
_NOISE = frozenset(
    {
        "nvidia",
        "geforce",
        "tesla",
        "quadro",
        "amd",
        "instinct",
        "radeon",
        "rtx",
        "gpu",
        "graphics",
        "card",
        "sxm",
        "sxm2",
        "sxm3",
        "sxm4",
        "sxm5",
        "pcie",
        "hbm2",
        "hbm2e",
        "hbm3",
        "hbm3e",
        "gddr6",
        "gddr6x",
        "gddr7",
        "ecc",
    }
)
_SIZE_TOKEN = re.compile(r"^(\d+(?:\.\d+)?)(gib|gb|g)$")
_SIZE_TEXT = re.compile(r"^\s*([0-9.eE+\-_]+|nan|inf|infinity)\s*(gib|gb|g|)\s*$", re.IGNORECASE)
_MAX_NAME = 100  # longer than any GPU name nvidia-smi prints; longer input is refused before any matching
_MAX_SIZE_GB = 4096.0  # a single accelerator with more than 4 TB of memory does not exist


def shown(text: str, limit: int = 40) -> str:
    """`text` quoted for a one-line message: control characters escaped (a newline cannot split the line, an
    escape sequence cannot recolour the terminal) and long input cut, so the message stays one short line."""
    out = "".join(repr(ch)[1:-1] if unicodedata.category(ch).startswith("C") else ch for ch in text)
    return "'" + (out if len(out) <= limit else out[: limit - 1] + "…") + "'"


def _tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[\s\-_/,()]+", text.lower()) if t]


def _model_and_size(text: str) -> tuple[str, float | None]:
    """('4090', 24.0) for 'NVIDIA GeForce RTX 4090 24GB': the chip's name without vendor words, and the size on
    the box in GB when the text gives one."""
    words = [t for t in _tokens(text) if t not in _NOISE]
    size = None
    rest = []
    for word in words:
        m = _SIZE_TOKEN.match(word)
        if m and size is None:
            size = float(m.group(1))
        else:
            rest.append(word)
    if size is None and len(rest) >= 2 and rest[-1].isdigit():  # "a100 80", "rtx 3060 12": the last number is GB
        size = float(rest.pop())
    model = re.sub(r"^rtx", "", "".join(rest))  # "rtx4090" and "4090" are the same chip
    return model, size


def _normal(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def usable_share(table: dict) -> float:
    """Median share of the sold memory that a training process can use, over the table's cards."""
    import statistics  # here: the wizard's first paint does not need it

    shares = [g.memory_gib / size for g in table.values() if (size := _model_and_size(g.name)[1])]
    return statistics.median(shares) if shares else 1.0


def _sized_card(text: str, table: dict):
    """A card given only by its memory size, or None when `text` is not a size."""
    m = _SIZE_TEXT.match(text)
    if not m:
        return None
    number, unit = m.group(1), m.group(2).lower()
    try:
        value = float(number)
    except ValueError:
        return None
    if not math.isfinite(value) or value <= 0 or value > _MAX_SIZE_GB:
        raise EstimateError(f"GPU memory {shown(text, 24)} must be above 0 and at most {_MAX_SIZE_GB:g} GB")
    if unit == "gib":
        return Gpu(id=f"{value:g}GiB", name=f"{value:g} GiB card", memory_gib=value, bf16=True, source="usable memory given by the user")
    share = usable_share(table)
    usable = round(value * share, 2)
    return Gpu(
        id=f"{value:g}GB",
        name=f"{value:g} GB card",
        memory_gib=usable,
        bf16=True,
        source=f"sold as {value:g} GB: {value:g} GiB of chips x {share:.3f}, the median usable share of the "
        "GPU table's cards (estimators/gpu_names.py)",
    )


def _variants(gpus: list) -> str:
    names = [f"{g.id} ({g.memory_gib:g} GiB)" for g in gpus]
    return " or ".join(names) if len(names) <= 2 else ", ".join(names[:-1]) + " or " + names[-1]


def resolve_gpu(text: str, table: dict):
    """The Gpu `text` names (see the module docstring); an EstimateError of one short line otherwise."""
    raw = str(text).strip()
    if not raw:
        raise EstimateError("no GPU given: name a card (rtx4090, a100-80gb) or a size (24GB); `advisor gpus` lists them")
    if len(raw) > _MAX_NAME:
        raise EstimateError(f"GPU name of {len(raw)} characters; name a card (rtx4090) or a size (24GB)")
    key = _normal(raw)
    for gpu in table.values():  # 1. id or full name, exactly
        if key in (_normal(gpu.id), _normal(gpu.name)):
            return gpu
    model, size = _model_and_size(raw)  # 2. the chip as people say it, with or without the size
    same_chip = [g for g in table.values() if model and _model_and_size(g.name)[0] == model]
    if same_chip:
        if size is not None:
            exact = [g for g in same_chip if _model_and_size(g.name)[1] == size]
            if len(exact) == 1:
                return exact[0]
            raise EstimateError(f"the GPU table has no {size:g} GB {model}; it has {_variants(same_chip)}")
        if len(same_chip) == 1:
            return same_chip[0]
        raise EstimateError(f"{shown(raw, 24)}: which one? {_variants(same_chip)}")
    card = _sized_card(raw, table)  # 3. a memory size
    if card is not None:
        return card
    import difflib

    names = {_normal(g.id): g.id for g in table.values()} | {_model_and_size(g.name)[0]: g.id for g in table.values()}
    close = list(dict.fromkeys(names[n] for n in difflib.get_close_matches(model or key, list(names), n=3, cutoff=0.6)))[:2]
    if close:  # short enough for the wizard's footer
        raise EstimateError(f"unknown GPU {shown(raw, 24)}; try {' or '.join(close)}, or a size like 24GB")
    raise EstimateError(f"unknown GPU {shown(raw, 24)}; see `advisor gpus` or give a size: 24GB")
