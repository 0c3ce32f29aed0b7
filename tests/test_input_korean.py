"""The Korean wizard's words (issue 13 item 15): make-it-fit text, phase names, the model's source line and the
exit lines in Korean; the glossary wraps wide characters without losing any, and has the memory screen's words."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console
from textual.widgets import Select, Static

from advisor import rules
from advisor.tui.i18n import fix_text, model_source, phase_name
from estimators.catalog import resolve_model
from estimators.fit import suggest_fixes
from estimators.gpus import find_gpu
from estimators.pricing import estimate
from estimators.setup import Setup

HANGUL = re.compile(r"[\uac00-\ud7a3]")
# English words of the solver's and estimator's texts that must not be left in Korean output
ENGLISH = re.compile(
    r"\b(instead|micro-batch|gradient|accumulation|sequences|tokens|slower|effective|states|"
    r"offloaded|forward|backward|layer|step|shorthand|saved|nothing|closed|run it)\b",
    re.IGNORECASE,
)


def _phases() -> set[str]:
    spec = resolve_model("7b").spec
    names: set[str] = set()
    for setup in (
        Setup(),
        Setup(grad_accum=4),
        Setup(adaptation="lora"),
        Setup(adaptation="qlora"),
        Setup(train="dpo", adaptation="lora"),
        Setup(train="ppo", adaptation="lora"),
        Setup(train="grpo", adaptation="lora"),
        Setup(train="reward", adaptation="lora"),
    ):
        names |= set(estimate(spec, setup).phases)
    names |= set(estimate(resolve_model("gemma-2-2b").spec, Setup()).phases)  # tied embeddings: backward (end)
    return names


def test_every_phase_has_a_korean_name():
    phases = _phases()
    assert {"forward", "optimizer step", "backward (top layer)", "generation"} <= phases
    for phase in phases:
        korean = phase_name(phase, "ko")
        assert HANGUL.search(korean) and not ENGLISH.search(korean), (phase, korean)
        assert phase_name(phase, "en") == phase


def _fixes():
    spec = resolve_model("7b").spec
    card = find_gpu("rtx3060").memory_bytes
    cases = [
        Setup(adaptation="full", micro_batch=4, seq_len=4096),
        Setup(adaptation="lora", micro_batch=8, seq_len=4096),
        Setup(adaptation="qlora", micro_batch=16, seq_len=8192, grad_ckpt=False),
    ]
    for setup in cases:
        yield from suggest_fixes(spec, setup, card, limit=6)


def test_make_it_fit_text_is_korean():
    fixes = list(_fixes())
    keys = {part for fix in fixes for part in fix.key.split("+")}
    assert {"micro_batch", "lora"} & keys and len(fixes) >= 5
    for fix in fixes:
        label, cost = fix_text(fix, "ko")
        assert HANGUL.search(label) and HANGUL.search(cost), fix.key
        assert not ENGLISH.search(label) and not ENGLISH.search(cost), (fix.key, label, cost)
        assert fix_text(fix, "en") == (fix.label, fix.cost)
    cut = next(f for f in fixes if "micro_batch" in f.key.split("+"))
    assert f"마이크로 배치 {cut.setup.micro_batch} × 그래디언트 누적 {cut.setup.grad_accum}" in fix_text(cut, "ko")[0]


def test_model_source_line_is_korean():
    how = resolve_model("7b").how
    assert how.startswith("shorthand ")
    assert "shorthand" not in model_source(how, "ko") and "크기 약칭" in model_source(how, "ko")
    assert model_source(how, "en") == how


def test_exit_lines_in_korean_and_quoted(tmp_path):
    from advisor.commands.wizard import exit_lines
    from advisor.tui.plan_calls import make_plan

    plan = make_plan({"goal": "domain", "data": ["instruction_pairs"], "gpu": "rtx3060", "model": "7b"})
    run_dir = tmp_path / "my run"
    ko = exit_lines(SimpleNamespace(plan=plan, action="save", run_dir=run_dir), "ko")
    text = "\n".join(line for line, _ in ko)
    assert "계획:" in text and "저장함:" in text and "실행 명령:" in text
    assert not ENGLISH.search(text.replace(str(run_dir), ""))
    assert f"advisor launch '{run_dir}'" in text  # shell-quoted: the folder name has a space
    assert exit_lines(SimpleNamespace(plan=None, action=None, run_dir=None), "ko")[0][0].startswith("advisor: 계획을")
    en = exit_lines(SimpleNamespace(plan=plan, action="quit", run_dir=None), "en")
    assert en[-1] == ("advisor: nothing saved", True)


# ---- glossary -----------------------------------------------------------------------------------------------

NEW_TERMS = {
    "sft": "§2",
    "lora": "§5",
    "qlora": "§5",
    "dpo": "§4",
    "ppo": "§3",
    "grpo": None,
    "micro_batch": None,
    "gradient_accumulation": None,
    "gradient_checkpointing": None,
    "zero_fsdp": None,
    "paged_optimizer": None,
}


def test_glossary_has_the_memory_screens_words():
    table = rules.glossary()
    for term, section in NEW_TERMS.items():
        row = table[term]
        assert rules.text(row, "definition", "ko") and rules.text(row, "definition", "en")
        if section:  # in the document: its section, and the Korean taken from it
            assert row["source"] == section
        else:  # beyond the document: a paper
            assert row.get("addition") is True and row["source"].startswith("paper: ")
    seed = Path("/work/shared/seeds/000_ad58a9e92aa47e5d.txt")
    if seed.exists():
        doc = seed.read_text(encoding="utf-8")
        assert "저차원 행렬만 추가해서 학습" in doc and "모델을 4bit로 양자화 + LoRA" in doc


def _rendered(lang: str, width: int) -> str:
    from advisor.tui.screens.glossary import glossary_table

    console = Console(width=width, record=True, color_system=None)
    console.print(glossary_table(lang))
    return console.export_text()


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_glossary_wrapping_keeps_every_character(lang):
    """Rich's ellipsis cut the last character of a wrapped line ('학습' -> '학 …' at 100 columns)."""
    for width in range(60, 141, 4):
        text = _rendered(lang, width)
        assert "…" not in text, width
        flat = re.sub(r"\s+", "", text)
        for row in rules.glossary().values():
            for word in rules.text(row, "definition", lang).split():
                assert word in flat, (width, word)


def test_glossary_in_the_korean_wizard_at_100_columns():
    from advisor.tui.app import WizardApp

    async def scenario():
        app = WizardApp(lang="ko")
        async with app.run_test(size=(100, 60)) as pilot:
            await pilot.pause()
            await pilot.press("ctrl+g")
            await pilot.pause()
            await pilot.pause()
            return "\n".join(strip.text for strip in app.screen._compositor.render_strips())

    screen = asyncio.run(scenario())
    assert "용어집" in screen and "Reference model" in screen
    assert "…" not in screen  # no word cut short
    assert "학습 중인" in re.sub(r"[ │]*\n[ │]*", " ", screen) or "학습 중인" in screen


async def _until(pilot, predicate, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        assert loop.time() < end, "timed out"
        await pilot.pause(0.05)


def _text(widget) -> str:
    content = getattr(widget, "content", None) or widget.render()
    console = Console(width=200, record=True, color_system=None)
    console.print(content)
    return console.export_text()


@pytest.mark.slow  # drives the wizard to the memory screen and applies a fix
def test_korean_memory_screen_and_make_it_fit():
    """The phase under the bar and the make-it-fit note are Korean (both were English)."""
    from advisor.tui.app import WizardApp

    async def scenario():
        app = WizardApp(answers={"goal": "domain", "data": ["instruction_pairs"], "gpu": "rtx3060", "model": "7b"}, lang="ko")
        async with app.run_test(size=(100, 40)) as pilot:
            while app.step != "memory":
                await pilot.press("ctrl+n")
                await pilot.pause()
                if app.step == "recommend":
                    await _until(pilot, lambda: app.state.plan_is_current())
            app.screen.query_one("#knob-adaptation", Select).value = "full"
            await pilot.pause()
            bar = _text(app.screen.query_one("#bar"))
            await pilot.press("ctrl+f")
            await _until(pilot, lambda: app.state.notes)
            return bar, _text(app.screen.query_one("#fix-note", Static))

    bar, note = asyncio.run(scenario())
    assert "단계 " in bar and not ENGLISH.search(bar.split("단계", 1)[1]), bar
    assert note.startswith("적용함: sft:") and not ENGLISH.search(note), note
