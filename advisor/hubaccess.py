"""Gated models on the Hugging Face Hub: which ones need an accepted license and a token, and whether this machine
has a token configured. Checked without the network (the token's validity and the license acceptance can only
be checked by the Hub; this says what is missing locally)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GatedOrg:
    prefix: str  # hub ids starting with this (case-insensitive)
    license: str
    source: str


GATED = (
    GatedOrg("meta-llama/", "the Llama community license", "every repo under huggingface.co/meta-llama asks to accept the license before download"),
    GatedOrg("google/gemma", "Google's Gemma terms of use", "the google/gemma-* repos ask to acknowledge the Gemma terms before download"),
    GatedOrg("mistralai/", "Mistral AI's access conditions", "the mistralai repos ask to agree to share contact information before download"),
)
TOKEN_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")  # the second is huggingface_hub's older name, still read


def gated(model_id: str) -> GatedOrg | None:
    """The gate of a hub id, or None (local paths, 'tiny' and ungated repos)."""
    text = (model_id or "").strip()
    if not text or text == "tiny" or text.startswith(("/", ".", "~")) or Path(text).expanduser().exists():
        return None
    low = text.lower()
    return next((org for org in GATED if low.startswith(org.prefix.lower())), None)


def token_file(env=os.environ) -> Path:
    """Where `hf auth login` stores the token: $HF_TOKEN_PATH, else $HF_HOME/token (HF_HOME: ~/.cache/huggingface)."""
    if env.get("HF_TOKEN_PATH"):
        return Path(env["HF_TOKEN_PATH"]).expanduser()
    home = env.get("HF_HOME") or str(Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface")
    return Path(home).expanduser() / "token"


def token_source(env=os.environ) -> str | None:
    """Where a token is configured ('HF_TOKEN', or the token file's path), or None."""
    for name in TOKEN_ENV:
        if env.get(name, "").strip():
            return name
    path = token_file(env)
    try:
        if path.is_file() and path.read_text(encoding="utf-8").strip():
            return str(path)
    except OSError:
        pass
    return None


def access_note(model_id: str, shown: str | None = None) -> str:
    """What a README says about a gated model (empty for others): what to accept and how to give the token.
    `shown` is the id as the README quotes user strings."""
    org = gated(model_id)
    if org is None:
        return ""
    return (
        f"{shown or model_id} is gated on the Hugging Face Hub: accept {org.license} on its model page "
        "(https://huggingface.co/ + the id) with your account, then give this machine a token: `hf auth login` "
        "(stored in $HF_HOME/token) or `export HF_TOKEN=...`. `advisor launch` warns when neither is set."
    )


def missing_token_warning(model_id: str, env=os.environ) -> str:
    """One line for `advisor launch` when the model is gated and no token is configured here ('' otherwise)."""
    org = gated(model_id)
    if org is None or token_source(env) is not None:
        return ""
    return (
        f"{model_id} is gated on the Hugging Face Hub and no token is configured here (HF_TOKEN is unset and "
        f"{token_file(env)} does not exist): accept {org.license} on https://huggingface.co/{model_id}, then run "
        "`hf auth login` or set HF_TOKEN, or the first stage fails when it downloads the model"
    )
