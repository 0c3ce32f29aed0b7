"""Issue 13 item 12: the wizard's Finish step with a folder that already holds a run. Pressing `s` without the
overwrite tick shows one inline line and keeps the wizard (and every answer) open; the folder can be changed
there; the script step says where files *will be* written; the trained model lands in outputs/<stage>, where
`advisor generate` puts it. Driven with Textual's Pilot like tests/test_wizard.py."""

from __future__ import annotations

import asyncio

from test_wizard import SIZE, SMALL_CARD, text_of, to_step, until
from textual.widgets import Input, Label, Static

from advisor.plan import load_plan
from advisor.tui.app import WizardApp


def _status(app) -> str:
    return text_of(app.screen.query_one("#status", Static))


def test_second_save_without_overwrite_keeps_the_wizard_open_then_another_folder_saves(tmp_path):
    taken = tmp_path / "wizard"
    taken.mkdir()
    (taken / "train_sft.py").write_text("# an earlier run\n")
    other = tmp_path / "second"

    async def scenario():
        app = WizardApp(answers=SMALL_CARD, lang="en", run_dir=str(taken))
        async with app.run_test(size=SIZE) as pilot:
            await to_step(pilot, "script")
            label = app.screen.query_one("#run-dir-row Label", Label)
            assert "Will be written to" in text_of(label)
            await to_step(pilot, "finish")
            await pilot.press("s")
            await pilot.pause(0.3)
            assert app.is_running and app.action is None  # no crash, no exit
            assert "already holds files" in _status(app) and str(taken) in _status(app)
            assert app.state.raw["gpu"] == SMALL_CARD["gpu"] and app.state.plan is not None  # answers kept
            assert (taken / "train_sft.py").read_text() == "# an earlier run\n"  # nothing overwritten
            field = app.screen.query_one("#finish-run-dir", Input)
            field.value = str(other)
            await pilot.pause()
            app.screen.query_one("#save").focus()
            await pilot.press("s")
            await until(pilot, lambda: app.action is not None)
        return app

    app = asyncio.run(scenario())
    assert app.action == "save" and app.saved == other
    plan = load_plan(other / "plan.toml")
    assert [s.output_dir for s in plan.stages] == ["outputs/sft"]  # RUN_DIR/outputs/<stage>, like `advisor generate`


def test_write_error_from_the_generator_is_shown_not_raised(tmp_path, monkeypatch):
    """Even when write_run itself refuses (the folder filled up after the check), the message is inline."""
    from advisor.errors import AdvisorError
    from advisor.tui.screens import finish

    def refuse(plan, run_dir, force=False):
        raise AdvisorError(f"{run_dir} exists and is not empty; pass --force to overwrite its files")

    monkeypatch.setattr(finish, "write_run", refuse)

    async def scenario():
        app = WizardApp(answers=SMALL_CARD, lang="en", run_dir=str(tmp_path / "fresh"))
        async with app.run_test(size=SIZE) as pilot:
            await to_step(pilot, "finish")
            await pilot.press("s")
            await until(pilot, lambda: "exists and is not empty" in _status(app))
            assert app.is_running and app.action is None
        return app

    asyncio.run(scenario())


def test_a_grpo_plan_without_a_reward_says_so_on_finish(tmp_path):
    """Issue 13 item 11: the wizard's "checkable tasks" route ends in GRPO; with no reward given the Finish step
    says loudly that the script will use the placeholder reward."""
    answers = {"goal": "reasoning", "data": ["reward_signal"], "gpu": "a100-80gb", "model": "tiny"}

    async def scenario():
        app = WizardApp(answers=answers, lang="en", run_dir=str(tmp_path / "r"))
        async with app.run_test(size=SIZE) as pilot:
            await to_step(pilot, "finish")
            assert app.state.plan.pipeline == "grpo"
            shown = text_of(app.screen.query_one("#finish-reward", Static))
            assert "PLACEHOLDER length reward" in shown and "--reward-check" in shown
        return app

    asyncio.run(scenario())
