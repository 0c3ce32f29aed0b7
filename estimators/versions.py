"""Library versions a run uses, carried in `Setup.versions` as one hashable string ("transformers=4.44,bitsandbytes=0.43").

The estimator prices the versions the generated scripts pin (`PINNED`, rules/stacks.toml) unless the user gives
others: `--versions transformers=4.44` overrides one package, `--versions detect` reads what is installed in the
current Python environment through `importlib.metadata` (package metadata only: nothing is imported, so the fast
path stays torch-free), and `--versions detect,torch=2.3` combines the two. Detection is opt-in because the
environment that runs `advisor` is often not the one that trains.
"""

from __future__ import annotations

import re
from functools import cache

from .errors import EstimateError
from .tables import read_table

# Packages whose versions change what a run allocates (each has rows in rules/stacks.toml or is a stack itself).
PACKAGES = (
    "torch",
    "transformers",
    "peft",
    "bitsandbytes",
    "trl",
    "accelerate",
    "deepspeed",
    "liger-kernel",
    "unsloth",
    "torchtune",
    "litgpt",
    "axolotl",
    "llamafactory",
)
# Names users type for the same distribution (pip normalises "_" and "-"; LLaMA-Factory's distribution is llamafactory).
ALIASES = {
    "liger_kernel": "liger-kernel",
    "liger": "liger-kernel",
    "llama-factory": "llamafactory",
    "llama_factory": "llamafactory",
    "bnb": "bitsandbytes",
}
DETECT = "detect"
_VERSION = re.compile(r"^\d+(\.\d+)*([a-z0-9.+\-]*)$", re.IGNORECASE)


@cache
def pinned() -> dict[str, str]:
    """The versions priced when none is given: what the generated scripts pin (rules/stacks.toml [pinned])."""
    return {k: v for k, v in read_table("stacks.toml")["pinned"].items() if k != "source"}


def package_name(text: str) -> str:
    name = text.strip().lower()
    name = ALIASES.get(name, name)
    if name not in PACKAGES:
        raise EstimateError(f"unknown package '{text.strip()}' in --versions; valid: {', '.join(PACKAGES)}")
    return name


def parse_versions(text: str) -> dict[str, str]:
    """ "transformers=4.44,bitsandbytes=0.43" -> {"bitsandbytes": "0.43", "transformers": "4.44"}. One-line errors."""
    out: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if item.lower() == DETECT:
            raise EstimateError("--versions detect is resolved by the command line (advisor.knobs); the estimator takes pkg=version")
        name, sep, version = item.replace("==", "=").partition("=")
        if not sep or not version.strip():
            raise EstimateError(f"--versions expects package=version items like transformers=4.44, got '{item}'")
        version = version.strip().split("+")[0]  # local tags (+cu121, +cpu) change nothing the estimate prices
        if not _VERSION.match(version):
            raise EstimateError(f"--versions: '{version}' is not a version number (package {name.strip()})")
        out[package_name(name)] = version
    return dict(sorted(out.items()))


def format_versions(versions: dict[str, str]) -> str:
    """The canonical string: sorted, comma-separated, so equal version sets give equal (hashable) Setups."""
    return ",".join(f"{k}={v}" for k, v in sorted(versions.items()))


def version_tuple(version: str) -> tuple[int, ...]:
    """ "2.4.0+cu121" -> (2, 4, 0); "0.43" -> (0, 43); "4.45.0.dev0" -> (4, 45, 0). Pre-release tags are ignored."""
    parts = []
    for piece in version.split("+")[0].split("."):
        digits = re.match(r"\d+", piece)
        if not digits:
            break
        parts.append(int(digits.group()))
        if digits.group() != piece:
            break
    return tuple(parts)


def in_range(version: str, spec: str) -> bool:
    """Whether `version` satisfies `spec`, a comma-separated list of ">=4.36", "<4.45", "==0.43" clauses ("" = any).
    Missing components compare as 0, so "4.44" < "4.45" and "4.45" >= "4.45.0"."""
    have = version_tuple(version)
    for clause in (c.strip() for c in spec.split(",") if c.strip()):
        op = re.match(r"(>=|<=|==|!=|<|>)", clause)
        if not op:
            raise EstimateError(f"bad version range '{clause}' (use >=, <, ==)")
        want = version_tuple(clause[op.end() :].strip())
        width = max(len(have), len(want))
        a, b = have + (0,) * (width - len(have)), want + (0,) * (width - len(want))
        ok = {">=": a >= b, "<=": a <= b, "==": a == b, "!=": a != b, "<": a < b, ">": a > b}[op.group()]
        if not ok:
            return False
    return True


def detect_versions(version_of=None) -> dict[str, str]:
    """Versions of PACKAGES installed in this Python environment, read from their metadata without importing them.
    Packages not installed are left out (the pinned version is priced for them)."""
    import importlib.metadata  # here, not at the top: ~30 ms the estimate's fast path does not pay

    version_of = version_of or importlib.metadata.version
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version_of(name).split("+")[0]
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def expand_versions(text: str, version_of=None) -> str:
    """A `--versions` value with "detect" resolved: detected versions first, explicit items override them."""
    items = [p.strip() for p in text.split(",") if p.strip()]
    detected = {}
    if any(p.lower() == DETECT for p in items):
        detected = detect_versions(version_of)
    given = parse_versions(",".join(p for p in items if p.lower() != DETECT))
    return format_versions(detected | given)


def priced_versions(given: str, packages: tuple[str, ...]) -> dict[str, str]:
    """The version of each of `packages` the estimate prices: the given one, else the pinned one ("" if neither)."""
    chosen = parse_versions(given) if given else {}
    base = pinned()
    out = {name: chosen.get(name, base.get(name, "")) for name in packages}
    out.update({k: v for k, v in chosen.items() if k not in out})
    return out


def version_of(setup_versions: str, package: str) -> str:
    """The priced version of one package ("" when neither given nor pinned)."""
    return priced_versions(setup_versions, (package,))[package]
