"""The Textual wizard, driven with Pilot at 80x24 as a person would (keys first), asserting on the Plan it returns.

Main paths: SFT with QLoRA on a small card (typed from an empty wizard), DPO when RLHF-vs-DPO is a close call,
RLHF's three stages, and a set-up that does not fit and is fixed with "make it fit". Plus: going back keeps
every answer, Korean, the answers file, and that every question declaration gets a widget.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import pytest
from conftest import run_advisor
from textual.widgets import Checkbox, Input, RadioSet, Select, Static

from advisor.errors import AdvisorError
from advisor.knobs import KNOBS
from advisor.questions import questions
from advisor.tui.app import WizardApp
from advisor.tui.plan_calls import memory_view
from advisor.tui.state import QUESTION_STEPS, WHATIF_KNOBS, WizardState, questions_for
from advisor.tui.widgets.choices import ChoiceSet

SIZE = (80, 24)
SMALL_CARD = {"goal": "domain", "data": ["instruction_pairs"], "gpu": "rtx3060", "model": "7b"}


async def until(pilot, predicate, timeout: float = 20.0) -> None:
    """Let the app run (workers included) until `predicate()` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {predicate.__doc__ or predicate}")
        await pilot.pause(0.05)


async def to_step(pilot, step: str) -> None:
    app = pilot.app
    while app.step != step:
        await pilot.press("ctrl+n")
        await pilot.pause()
        if app.step == "recommend":
            await until(pilot, lambda: app.state.plan_is_current())


async def enter_data_file(pilot, path, read) -> None:
    """Type `path` into the data step's file field and press Enter, as a person does; wait until `read()` holds."""
    from textual.widgets import Input

    field = pilot.app.screen.query_one("#data-path", Input)
    field.value = str(path)
    field.focus()
    await pilot.press("enter")
    await until(pilot, read)
    await pilot.pause()


async def to_step_back(pilot, step: str) -> None:
    app = pilot.app
    while app.step != step:
        app.action_back()
        await pilot.pause()


def text_of(widget) -> str:
    """The plain text a Static (or button, label) shows, rich renderables included."""
    from rich.console import Console

    content = getattr(widget, "content", None)
    if content is None:
        content = widget.render()
    if isinstance(content, str):
        from textual.content import Content

        return Content.from_markup(content).plain
    if hasattr(content, "plain"):
        return content.plain
    console = Console(width=300, record=True, color_system=None, file=open("/dev/null", "w"))
    console.print(content)
    return console.export_text()


def run(coro):
    return asyncio.run(coro)


# ---- the main paths ------------------------------------------------------------------------------------


def test_sft_qlora_on_a_small_card_typed_from_scratch(tmp_path):
    """Nothing pre-filled: pick the goal and data with the keyboard, type the GPU's memory, save the run."""
    run_dir = tmp_path / "run"

    async def scenario():
        app = WizardApp(lang="en", run_dir=str(run_dir))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert app.step == "goal"
            await pilot.press("ctrl+n")  # nothing chosen yet: stays, and says what is missing
            assert app.step == "goal"
            assert "Fix first" in text_of(app.screen.query_one("#status"))
            assert app.focused.id == "q-goal"
            await pilot.press("down", "down", "down", "down", "enter")  # "Adapt to a domain"
            assert app.state.raw["goal"] == "domain"
            model_note = app.screen.query_one("#model-resolved", Static)  # asked with the goal, before the data
            await until(pilot, lambda: "6,738,415,616 parameters" in text_of(model_note))  # the default 7b, resolved at once
            await pilot.press("ctrl+n")
            assert app.step == "data"
            await pilot.press("space")  # the first checkbox: instruction-response pairs
            await pilot.press("tab", "tab", "tab", "tab", *"20000")  # to "how many examples"
            assert app.state.raw["data"] == ["instruction_pairs"]
            assert app.state.raw["data_count"] == "20000"
            await pilot.press("ctrl+n")
            assert app.step == "resources"
            await pilot.press("tab", *"12GB")  # past the GPU table, into "or type its memory"
            assert app.state.raw["gpu"] == "12GB"
            await to_step(pilot, "recommend")
            plan = app.state.plan
            assert (plan.pipeline, plan.adaptation) == ("sft", "qlora")
            advice = text_of(app.screen.query_one("#advice"))
            assert "Recommended: SFT + QLoRA" in advice and "[sel.domain §6]" in advice
            await to_step(pilot, "memory")
            assert "fits on 12 GB card" in text_of(app.screen.query_one("#bar"))
            await to_step(pilot, "script")
            await until(pilot, lambda: app.screen.files)
            assert "train_sft.py" in app.screen.files
            assert "def " in app.screen.files["train_sft.py"]
            await to_step(pilot, "finish")
            await pilot.press("s")
            await until(pilot, lambda: app.return_value is not None or app.action is not None)
        return app

    app = run(scenario())
    plan = app.return_value
    assert app.action == "save" and app.saved == run_dir
    assert (plan.pipeline, plan.adaptation) == ("sft", "qlora")
    assert 11.7 < plan.hardware.memory_gib < 12.0  # "12GB" is a card sold as 12 GB: usable like the RTX 3060's 11.76 GiB
    assert plan.answers["data_count"] == 20000
    assert (run_dir / "train_sft.py").is_file() and (run_dir / "plan.toml").is_file()


def test_dpo_when_rlhf_vs_dpo_is_close_shows_the_comparison_and_glossary():
    """Best quality wanted but cost first: DPO, the §6 comparison table, and the glossary one key away."""

    async def scenario():
        answers = {"goal": "best_quality", "priority": "cost", "data": ["preference_pairs"], "gpu": "rtx4090", "model": "7b"}
        app = WizardApp(answers=answers, lang="en")
        async with app.run_test(size=SIZE) as pilot:
            await to_step(pilot, "recommend")
            advice = text_of(app.screen.query_one("#advice"))
            assert "Recommended: DPO" in advice
            assert "RLHF vs DPO (the document's §6 comparison)" in advice
            assert "Implementation difficulty" in advice  # a row of rules/selection.toml [[rlhf_vs_dpo]]
            assert "[cmp.choose_when §6]" in advice
            await pilot.press("ctrl+g")
            assert type(app.screen).__name__ == "GlossaryScreen"
            await pilot.press("escape")
            assert app.step == "recommend" and type(app.screen).__name__ == "RecommendScreen"
            await pilot.press("ctrl+q")
        return app

    app = run(scenario())
    assert app.action == "quit"
    assert app.return_value.pipeline == "dpo"


def test_rlhf_three_stages_each_with_its_own_what_if():
    """Ample hardware and best quality: RLHF as SFT -> reward -> PPO; the memory step switches stages and a
    what-if on one stage leaves the others alone."""

    async def scenario():
        answers = {"goal": "best_quality", "data": ["instruction_pairs", "preference_pairs"], "gpu": "h100", "gpu_count": 8, "model": "8b"}
        app = WizardApp(answers=answers, lang="en")
        async with app.run_test(size=SIZE) as pilot:
            await to_step(pilot, "memory")
            plan = app.state.plan
            assert [s.name for s in plan.stages] == ["sft", "reward", "ppo"]
            before = {s.name: s.setup for s in plan.stages}
            app.screen.query_one("#stage", RadioSet).focus()
            await pilot.press("right", "enter")  # stage "reward"
            assert app.state.stage == "reward"
            micro = app.screen.query_one("#knob-micro_batch", Input)
            micro.focus()
            await pilot.press("end", "backspace", "backspace", "backspace", "1")
            assert app.state.plan.stage("reward").setup.micro_batch == 1
            await to_step(pilot, "finish")
            await pilot.press("q")
        return app, before

    app, before = run(scenario())
    plan = app.return_value
    assert plan.pipeline == "rlhf" and plan.hardware.count == 8
    assert plan.stage("sft").setup == before["sft"] and plan.stage("ppo").setup == before["ppo"]
    assert plan.stage("reward").setup == before["reward"].with_(micro_batch=1)
    assert app.action == "quit" and app.saved is None


def test_a_setup_that_does_not_fit_is_fixed_with_make_it_fit(tmp_path):
    """Full fine-tuning of 7B on a 12 GB card does not fit; Ctrl+F applies the solver's cheapest fix; then
    "launch now" saves the run and hands the launch to the command (after the app exits)."""
    run_dir = tmp_path / "run"

    async def scenario():
        app = WizardApp(answers=SMALL_CARD, lang="en", run_dir=str(run_dir))
        async with app.run_test(size=SIZE) as pilot:
            await to_step(pilot, "memory")
            app.screen.query_one("#knob-adaptation", Select).value = "full"
            await pilot.pause()
            bar = app.screen.query_one("#bar")
            assert bar.has_class("-over") and "does not fit" in text_of(bar)
            assert not app.state.plan.estimate.fits and app.state.plan.adaptation == "full"
            await pilot.press("ctrl+f")
            await until(pilot, lambda: app.state.notes)
            assert bar.has_class("-fits") and "✓ fits on" in text_of(bar)
            assert "applied: sft:" in text_of(app.screen.query_one("#fix-note"))
            await to_step(pilot, "finish")
            await pilot.press("l")
            await until(pilot, lambda: app.action is not None)
        return app

    app = run(scenario())
    plan = app.return_value
    assert plan.estimate.fits and memory_view(plan, "sft").fits
    assert plan.adaptation == "qlora"  # the solver's cheapest fix on a 12 GB card (LoRA of a 7B does not fit), in the plan
    assert app.action == "launch" and app.saved == run_dir
    from advisor.plan import load_plan

    assert load_plan(run_dir / "plan.toml").stage("sft").setup == plan.stage("sft").setup  # the fixed set-up was written


# ---- the rest ----------------------------------------------------------------------------------------------


def test_going_back_keeps_every_answer():
    """Answers survive Back and Next: the widgets are rebuilt from the state."""

    async def scenario():
        app = WizardApp(answers=SMALL_CARD, lang="en")
        async with app.run_test(size=SIZE) as pilot:
            await to_step(pilot, "resources")
            count = app.screen.query_one("#q-gpu_count", Input)
            count.focus()
            await pilot.press(*"2")
            budget = app.screen.query_one("#q-budget_usd", Input)
            budget.focus()
            await pilot.press(*"300")
            await pilot.press("escape", "escape")  # back to the goal
            assert app.step == "goal"
            assert app.screen.query_one("#q-goal", ChoiceSet).value == "domain"
            await pilot.press("ctrl+n", "ctrl+n")
            assert app.step == "resources"
            assert app.screen.query_one("#q-gpu", Select).value == "rtx3060"
            assert app.screen.query_one("#q-gpu_count", Input).value == "2"
            assert app.screen.query_one("#q-budget_usd", Input).value == "300"
            await pilot.press("escape")
            assert app.screen.query_one("#q-data-instruction_pairs", Checkbox).value is True
        return app

    app = run(scenario())
    assert app.state.answers().gpu_count == 2 and app.state.answers().budget_usd == 300


def test_invalid_answer_is_shown_and_blocks_next():
    async def scenario():
        app = WizardApp(answers=SMALL_CARD, lang="en")
        async with app.run_test(size=SIZE) as pilot:
            await to_step(pilot, "resources")
            app.screen.query_one("#q-gpu-memory", Input).focus()
            await pilot.press(*"banana")
            error = app.screen.query_one("#field-gpu .q-error", Static)
            assert error.display and "unknown GPU 'banana'" in text_of(error)
            await pilot.press("ctrl+n")
            assert app.step == "resources"
            assert "Fix first" in text_of(app.screen.query_one("#status"))
            await pilot.press(*["backspace"] * 6, *"12GB")
            assert app.state.problems("resources") == []
            await to_step_back(pilot, "goal")  # the model is asked with the goal
            model = app.screen.query_one("#q-model", Input)
            model.focus()
            await pilot.press("end", "backspace", "backspace", *"llama-99z")
            note = app.screen.query_one("#model-resolved", Static)
            await until(pilot, lambda: note.has_class("-error"))
            assert "unknown model 'llama-99z'" in text_of(note)
            await pilot.press("ctrl+n")
            assert app.step == "goal" and "unknown model" in text_of(app.screen.query_one("#status"))

    run(scenario())


def test_korean_texts_come_from_the_declarations():
    async def scenario():
        app = WizardApp(answers=SMALL_CARD, lang="ko")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            goal = next(q for q in questions() if q.id == "goal")
            label = app.screen.query_one("#field-goal .q-label")
            assert goal.label_ko in str(label.render())
            assert "다음" in text_of(app.screen.query_one("#next"))
            await to_step(pilot, "recommend")
            assert "추천:" in text_of(app.screen.query_one("#advice"))

    run(scenario())


def test_every_declared_question_gets_a_widget():
    """The wizard renders questions.py: every declaration has a widget on one of the question steps."""
    asked = [q.id for step in QUESTION_STEPS for q in questions_for(step)]
    assert sorted(asked) == sorted(q.id for q in questions())

    async def scenario():
        app = WizardApp(answers=SMALL_CARD, lang="en")
        seen = set()
        async with app.run_test(size=SIZE) as pilot:
            for step in QUESTION_STEPS:
                await to_step(pilot, step)
                seen |= {w.id.removeprefix("field-") for w in app.screen.query(".question")}
        return seen

    assert run(scenario()) == {q.id for q in questions()}


def test_what_if_controls_are_setup_knobs():
    fields = {k.field for k in KNOBS}
    assert set(WHATIF_KNOBS) <= fields


def test_state_keeps_invalid_text_and_reports_it():
    state = WizardState(lang="en")
    assert state.set_answer("gpu_count", "two") is not None
    assert state.raw["gpu_count"] == "two"
    assert any(p.startswith("How many GPUs?") for p in state.problems("resources"))
    assert state.set_answer("gpu_count", "2") is None and "gpu_count" not in state.errors


# ---- the command ------------------------------------------------------------------------------------------


def _args(**kw) -> argparse.Namespace:
    base = {q.id: None for q in questions()} | {"answers": None, "lang": None, "out": None}
    return argparse.Namespace(**(base | kw))


def test_answers_file_prefills_and_flags_override(tmp_path):
    from advisor.commands.wizard import prefilled

    path = tmp_path / "answers.toml"
    path.write_text('goal = "domain"\ndata = ["instruction_pairs"]\ngpu = "rtx3060"\n', encoding="utf-8")
    assert prefilled(_args(answers=path, gpu="rtx4090")) == {"goal": "domain", "data": ["instruction_pairs"], "gpu": "rtx4090"}
    path.write_text('goal = "fly"\n', encoding="utf-8")
    with pytest.raises(AdvisorError, match="unknown choice 'fly'"):
        prefilled(_args(answers=path))
    path.write_text('gpu = "banana"\n', encoding="utf-8")
    with pytest.raises(AdvisorError, match="unknown GPU 'banana'"):
        prefilled(_args(answers=path))


def test_wizard_without_a_terminal_says_what_to_use_instead():
    proc = run_advisor("wizard", "--goal", "domain")
    assert proc.returncode == 2
    assert "needs a terminal" in proc.stderr and "advisor advise" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_launch_now_hands_over_to_the_launcher_after_the_app(tmp_path, monkeypatch, capsys):
    """The command runs `advisor launch RUN_DIR` semantics once the wizard has returned (not inside the app)."""
    import advisor.commands.launch as launch_cmd
    import advisor.commands.wizard as wizard_cmd
    import advisor.tui as tui
    from advisor.tui.plan_calls import make_plan

    plan = make_plan(SMALL_CARD)
    calls = []
    monkeypatch.setattr(tui, "run_wizard", lambda raw, lang, run_dir: tui.Outcome(plan, "launch", tmp_path / "run"))
    monkeypatch.setattr(launch_cmd, "run", lambda args: calls.append(args) or 0)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    monkeypatch.setattr("sys.stdout.isatty", lambda: True, raising=False)
    assert wizard_cmd.run(_args(lang="en")) == 0
    assert [c.run_dir for c in calls] == [str(tmp_path / "run")]
    assert not calls[0].resume and not calls[0].dry_run and not calls[0].force
    assert "plan: SFT + QLoRA" in capsys.readouterr().out
