"""The one place the interface language is read from the locale (the wizard and every command use it)."""

from __future__ import annotations

import os
from collections.abc import Mapping

LANGS = ("ko", "en")  # the languages of every text: questions, rule tables, the wizard's words, the advice


def default_lang(environ: Mapping[str, str] | None = None) -> str:
    """Korean when the locale says so (LC_ALL, LC_MESSAGES, LANG, in POSIX order), else English.

    Messages follow LC_MESSAGES, so `LC_MESSAGES=ko_KR LANG=en_US` is Korean everywhere."""
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = env.get(name, "")
        if value:
            return "ko" if value.lower().startswith("ko") else "en"
    return "en"
