"""`advisor advise` on a stream that is not a terminal is written without rich (advisor/plaintext.py,
advisor/compact_table.py): the same characters rich prints, at every width, or rich itself where plaintext is unsure."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.markup import escape as rich_escape

from advisor import plaintext
from advisor.advice.advise import advise
from advisor.answers import Answers
from advisor.compact_table import CompactSpec
from advisor.plan_render import plan_blocks
from advisor.render import plain_lines

PLANS = {
    "sft-qlora": {"goal": "chat_format", "data": ["instruction_pairs"], "gpu": "rtx3060ti", "model": "7b"},
    "close-call": {"goal": "best_quality", "priority": "cost", "data": ["preference_pairs"], "gpu": "rtx4090", "model": "7b"},
    "rlhf": {"goal": "quality_safety", "data": ["instruction_pairs", "preference_pairs"], "gpu": "h100", "model": "8b"},
    "raw-text": {"goal": "domain", "data": ["raw_text"], "gpu": "24GB"},
    "two-gpus": {"goal": "best_quality", "data": ["preference_pairs"], "gpu": "a100-80gb", "gpu_count": 2},
}
WIDTHS = (60, 67, 71, 80, 97, 120, 200)


def rich_text(blocks: list, width: int) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=width)
    for block in blocks:
        console.print(block.to_rich() if hasattr(block, "to_rich") else block)
    return buf.getvalue()


@pytest.fixture(scope="module")
def blocks() -> dict:
    return {name: plan_blocks(advise(Answers.from_mapping(answers)), answers) for name, answers in PLANS.items()}


@pytest.mark.parametrize("name", PLANS)
def test_the_plain_plan_is_rich_s_character_for_character(blocks, name):
    laid_out = 0
    for width in WIDTHS:
        try:
            lines = plain_lines(blocks[name], width)
        except plaintext.Unsupported:  # rich prints it: nothing to compare
            continue
        laid_out += 1
        assert "".join(line + "\n" for line in lines) == rich_text(blocks[name], width), width
    assert laid_out >= 4  # 80 columns and wider are laid out here (60 may need rich's folding)


def test_a_compact_table_too_wide_for_the_stream_goes_to_rich():
    spec = CompactSpec("t", ("a", "b"), (False, True), [("x" * 50, "1" * 40)])
    assert spec.plain_lines(100)[1:3] == ["a" + " " * 49 + "  " + " " * 39 + "b", "─" * 92]
    with pytest.raises(plaintext.Unsupported):
        spec.plain_lines(80)


@pytest.mark.parametrize("text", ["a [b] c", "\\[x]", "end\\", "end\\\\", "[/bold]", "[Q]", "x [1]", "[sel.x] [@click] [#f00]", ""])
def test_escape_is_rich_s(text):
    assert plaintext.escape(text) == rich_escape(text)


def test_an_escaped_bracket_is_printed_as_a_bracket():
    assert plaintext.plain("  • it fits [dim]\\[sel.chat_format][/dim]") == "  • it fits [sel.chat_format]"
    assert plaintext.plain("[bold yellow]Warnings[/bold yellow]") == "Warnings"
    for refused in ("[sel.x]", "\\\\[sel.x]", "a\0b", "[italic]x[/italic]"):
        with pytest.raises(plaintext.Unsupported):
            plaintext.plain(refused)


def test_korean_advice_is_printed_by_rich():
    answers = PLANS["sft-qlora"]
    with pytest.raises(plaintext.Unsupported):
        plain_lines(plan_blocks(advise(Answers.from_mapping(answers)), answers, "ko"), 80)
