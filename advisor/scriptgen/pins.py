"""The versions a generated script pins: the ones installed where it is generated, else the pins of pyproject's
`train` extra, read from pyproject.toml in a source tree (an editable install's metadata lags behind it) or from
the installed package's metadata, so the pins have one home. Which of them a stage's script lists is `dependencies`."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

from estimators.layouts import BNB_OPTIMIZERS

# The training stack a script needs, in the order its PEP 723 block lists them.
STACK = ("torch", "transformers", "datasets", "accelerate", "peft", "trl", "bitsandbytes", "galore-torch")
# Pinned, but named by a run (its README) only where one of its scripts needs it: galore-torch for --galore.
OPTIONAL = ("galore-torch",)
GALORE = ("galore-torch", "bitsandbytes")  # what --galore needs: GaLore AdamW, whose galore_torch imports bitsandbytes
# Distribution -> the name it is imported by, where they differ: scripts list distributions, `advisor launch` checks imports.
IMPORT_NAMES = {"galore-torch": "galore_torch"}
PPO_TRL = "1.12.0"  # the last trl with PPO (trl.experimental.ppo); later releases removed it
_PIN = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*==\s*([^;\s]+)\s*(?:;\s*extra\s*==\s*[\"']train[\"'])?\s*$")


def train_pins() -> dict[str, str]:
    """name -> version of each `==` pin in the `train` extra."""
    path = Path(__file__).resolve().parents[2] / "pyproject.toml"
    if path.is_file():  # a source tree, installed editable or not
        requires = tomllib.loads(path.read_text(encoding="utf-8"))["project"]["optional-dependencies"]["train"]
    else:
        requires = [r for r in importlib.metadata.requires("advisor") or [] if 'extra == "train"' in r or "extra == 'train'" in r]
    pins = {m[1]: m[2] for r in requires if (m := _PIN.match(r))}
    return {name: pins[name] for name in STACK if name in pins}


FALLBACK_PINS = train_pins()


def package_versions() -> dict[str, str]:
    """Installed versions of the training stack (local tags like +cpu dropped), else pyproject's pins."""
    versions = {}
    for name, pin in FALLBACK_PINS.items():
        try:
            versions[name] = importlib.metadata.version(name).split("+")[0]
        except importlib.metadata.PackageNotFoundError:
            versions[name] = pin
    return versions


def required(setup) -> list[str]:
    """The distributions the script of `setup` imports, in STACK order: its PEP 723 block pins them, and `advisor
    launch` checks that they are installed (by IMPORT_NAMES) before it starts anything."""
    names = {"torch", "transformers", "datasets", "accelerate", "peft", "trl"}
    if setup.adaptation == "qlora" or setup.optimizer in BNB_OPTIMIZERS:  # 4-bit layers, 8-bit AdamW states
        names.add("bitsandbytes")
    if setup.galore:
        names.update(GALORE)
    return [name for name in STACK if name in names]


def dependencies(setup, versions: dict[str, str], trl: str | None = None) -> list[str]:
    """The `name==version` pins of a script's PEP 723 block for `setup`, from `versions` (`trl`: PPO's own pin)."""
    pins = dict(versions, **({"trl": trl} if trl else {}))
    return [f"{name}=={pins[name]}" for name in required(setup)]
