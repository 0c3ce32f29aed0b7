"""A tokenizer folder's chat template, found and rendered the way transformers does (jinja2 in its sandbox), so
the token counts of conversational rows are those of `apply_chat_template`."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def token_text(value: Any) -> str:
    return value.get("content", "") if isinstance(value, dict) else str(value)


def chat_template(folder: Path, config: dict) -> str:
    """transformers' order: chat_template.jinja, then chat_template.json, then tokenizer_config.json."""
    if (folder / "chat_template.jinja").is_file():
        return (folder / "chat_template.jinja").read_text(encoding="utf-8")
    template = read_json(folder / "chat_template.json").get("chat_template") or config.get("chat_template")
    if isinstance(template, list):  # named templates: the "default" one is what apply_chat_template uses
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default") or next(iter(named.values()), None)
    return template or ""


@lru_cache(maxsize=8)
def _compiled(template: str):
    """The environment transformers builds (utils/chat_template_utils.py, _compile_jinja_template)."""
    from datetime import datetime

    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise ValueError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template)


def render_chat(template: str, turns: list[dict], generation_prompt: bool, special: dict[str, str]) -> str:
    return _compiled(template).render(messages=turns, add_generation_prompt=generation_prompt, tools=None, documents=None, **special)
