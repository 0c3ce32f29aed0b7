"""The wizard's data step with the file field wired in (issue 17), through Pilot at 80x24: a file path typed on the
data screen is checked, the summary and histogram are shown, its answers (data kind, count, sequence length) fill the
questions, and the plan's stage loads that file with its mapping."""

from __future__ import annotations

import asyncio

from test_datawire_generate import ALPACA, PAIRS, write
from test_wizard import SIZE, enter_data_file, to_step
from textual.widgets import Checkbox, Input

from advisor.tui.app import WizardApp
from advisor.tui.plan_calls import render_files


async def _check_file(pilot, path) -> None:
    """The file read: a usable dataset, or the step saying it is unusable."""
    app = pilot.app
    await enter_data_file(pilot, path, lambda: app.state.dataset is not None or "unusable" in app.screen.query_one("#data-step").text)


def test_a_checked_file_answers_the_data_questions_and_feeds_the_plan(tmp_path):
    data = write(tmp_path, "alpaca.jsonl", ALPACA)
    app = WizardApp(answers={"goal": "domain", "gpu": "rtx3060", "model": "7b"}, lang="en")

    async def go():
        async with app.run_test(size=SIZE) as pilot:
            await to_step(pilot, "data")
            await _check_file(pilot, data)
            step = app.screen.query_one("#data-step")
            assert "prompt-completion, conversational, from alpaca columns" in step.text and "--seq-len 64" in step.text
            assert app.screen.query_one("#q-data-instruction_pairs", Checkbox).value  # ticked on the screen, not only in the state
            assert app.screen.query_one("#q-data_count", Input).value == "12"
            await to_step(pilot, "recommend")

    asyncio.run(go())
    state = app.state
    assert state.raw["data"] == ["instruction_pairs"] and str(state.raw["data_count"]) == "12" and str(state.raw["seq_len"]) == "64"
    stage = state.plan.stages[0]
    assert stage.setup.seq_len == 64
    assert stage.dataset == str(data.resolve()) and stage.data.format == "alpaca"
    script = render_files(state.plan)[f"train_{stage.name}.py"]
    assert "def to_trl(row):" in script and str(data.resolve()) in script


def test_a_count_typed_by_hand_is_kept_and_preference_data_is_added(tmp_path):
    data = write(tmp_path, "pairs.jsonl", PAIRS)
    app = WizardApp(answers={"goal": "domain", "data": ["instruction_pairs"], "data_count": 5000, "gpu": "rtx3060", "model": "7b"}, lang="en")

    async def go():
        async with app.run_test(size=SIZE) as pilot:
            await to_step(pilot, "data")
            await _check_file(pilot, data)

    asyncio.run(go())
    assert app.state.raw["data"] == ["instruction_pairs", "preference_pairs"]
    assert str(app.state.raw["data_count"]) == "5000"
    assert app.state.dataset_answer == "preference_pairs"


def test_an_unusable_file_is_shown_and_not_planned(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "output": ""}\n{"instruction": "b"\n', encoding="utf-8")
    app = WizardApp(answers={"goal": "domain", "gpu": "rtx3060", "model": "7b"}, lang="en")

    async def go():
        async with app.run_test(size=SIZE) as pilot:
            await to_step(pilot, "data")
            await _check_file(pilot, bad)
            assert "unusable" in app.screen.query_one("#data-step").text

    asyncio.run(go())
    assert app.state.dataset is None and "data" not in app.state.raw


def test_snapshot_of_the_data_screen_after_a_check(snap_compare, tmp_path, monkeypatch):
    """80x24: the data questions answered from the file, then the file field with the summary and the histogram."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "alpaca.jsonl", ALPACA)

    async def before(pilot):
        await to_step(pilot, "data")
        await _check_file(pilot, "alpaca.jsonl")
        pilot.app.screen.query_one("#data-path", Input).cursor_blink = False
        pilot.app.screen.query_one("#data-summary").scroll_visible(animate=False)
        await pilot.pause()

    assert snap_compare(WizardApp(answers={"goal": "domain", "gpu": "rtx3060", "model": "7b"}, lang="en"), terminal_size=SIZE, run_before=before)
