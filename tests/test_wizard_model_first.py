"""The wizard asks for the model before the data (issue 17), through Pilot at 80x24: the model answered on the goal step
counts the data step's tokens with its own tokenizer and chat template (a tiny tokenizer trained here, whose counts
differ from the approximation), the widget says which tokenizer counted, and a model changed after the file was read
has the file measured again with the new one before the plan is made."""

from __future__ import annotations

import asyncio

from data_corpus import tiny_model, write_jsonl
from test_wizard import SIZE, enter_data_file, to_step, to_step_back, until
from textual.widgets import Input

from advisor.datasets import sources
from advisor.datasets.check import Options, run_check
from advisor.datasets.counters import ApproxCounter, TokenizerCounter
from advisor.tui.app import WizardApp
from advisor.tui.state import questions_for

# alpaca rows (mapped to conversational prompt-completion): the chat template adds its tokens to every turn
ROWS = [
    {"instruction": f"Explain why exercise is good for health, point {i}.", "input": "", "output": "좋은 아침입니다. " * (i + 1)} for i in range(12)
]


def _counts(path, counter) -> dict:
    return run_check(sources.resolve(str(path)), counter, Options())["tokens"]["sequence"]


async def _type_model(pilot, text: str) -> None:
    app = pilot.app
    field = app.screen.query_one("#q-model", Input)
    field.value = text
    note = app.screen.query_one("#model-resolved")
    await until(pilot, lambda: app.state.raw.get("model") == text and "parameters" in str(note.render()))


async def _read(pilot, path) -> None:
    """The file read, and any re-measure with a changed model's tokenizer finished."""
    app = pilot.app
    await enter_data_file(pilot, path, lambda: app.state.dataset is not None and not app.screen.query_one("#data-step").busy)


def test_the_model_is_asked_on_the_goal_step():
    assert [q.id for q in questions_for("goal")] == ["goal", "model"]
    assert "model" not in [q.id for q in questions_for("resources")]


def test_the_data_step_counts_with_the_model_chosen_first_and_again_when_it_changes(tmp_path):
    model = tiny_model(tmp_path / "tiny")
    data = write_jsonl(tmp_path / "alpaca.jsonl", ROWS)
    exact, approx = _counts(data, TokenizerCounter(model, str(model))), _counts(data, ApproxCounter())
    assert exact != approx  # the test can tell which counter measured
    app = WizardApp(answers={"goal": "domain", "gpu": "rtx3060"}, lang="en")
    seen = {}

    async def go():
        async with app.run_test(size=SIZE) as pilot:
            assert app.step == "goal"
            await _type_model(pilot, str(model))  # typed on the goal step, before the data is read
            await to_step(pilot, "data")
            await _read(pilot, data)
            step = app.screen.query_one("#data-step")
            seen["first"] = (step.text, step.data["tokens"]["sequence"], app.state.dataset_model, app.state.raw["seq_len"])

            await to_step_back(pilot, "goal")  # another model: the lengths counted by the tiny tokenizer are stale
            await _type_model(pilot, "7b")  # no tokenizer of Llama 2 7B in the test's empty HF cache
            assert app.state.dataset_is_stale()
            await to_step(pilot, "data")
            step = app.screen.query_one("#data-step")
            assert step.busy or not app.state.dataset_is_stale()  # measuring again as soon as the step shows
            await until(pilot, lambda: not step.busy)
            await pilot.pause()
            seen["second"] = (step.text, step.data["tokens"]["sequence"], app.state.dataset_model, app.state.raw["seq_len"])
            await to_step(pilot, "recommend")

    asyncio.run(go())
    text, lengths, counted_by, seq_len = seen["first"]
    assert f"tokens counted with {model}'s own tokenizer and chat template" in text
    assert lengths == exact and counted_by == str(model)
    text, lengths, counted_by, seq_len2 = seen["second"]
    assert "the model changed" not in text and "tokens approximated: no tokenizer of 7b on this machine" in text
    assert lengths == approx and counted_by == "7b"
    assert int(seq_len2) == run_check(sources.resolve(str(data)), ApproxCounter(), Options())["recommendation"]["seq_len"] != int(seq_len)
    stage = app.state.plan.stages[0]  # the plan's stage loads the file with the lengths of the plan's model
    assert stage.setup.seq_len == int(seq_len2)
    assert stage.dataset == str(data.resolve()) and stage.data.tokens["max"] == approx["max"] and not stage.data.tokens["exact"]


def test_a_file_the_new_model_cannot_count_is_dropped_with_the_length_it_gave(tmp_path):
    """Conversational data and a tokenizer without a chat template: the trainer would refuse it, so the plan does not
    use the file, nor the sequence length its earlier count filled in."""
    with_template, without = tiny_model(tmp_path / "chat"), tiny_model(tmp_path / "plain", template="")
    data = write_jsonl(tmp_path / "alpaca.jsonl", ROWS)
    app = WizardApp(answers={"goal": "domain", "gpu": "rtx3060", "model": str(with_template)}, lang="en")

    async def go():
        async with app.run_test(size=SIZE) as pilot:
            await to_step(pilot, "data")
            await _read(pilot, data)
            assert "seq_len" in app.state.raw and app.state.dataset_model == str(with_template)
            await to_step_back(pilot, "goal")
            await _type_model(pilot, str(without))
            await to_step(pilot, "data")
            step = app.screen.query_one("#data-step")
            await until(pilot, lambda: not step.busy)
            await pilot.pause()
            return step.text

    text = asyncio.run(go())
    assert "has no chat template" in text
    assert app.state.dataset is None and app.state.raw.get("seq_len") in (None, "")


def test_next_waits_while_the_data_is_measured_again(tmp_path, monkeypatch):
    """The user cannot reach the plan with lengths from the old tokenizer: Next stays on the data step until the new
    count is in (the check is held here until the test lets it go)."""
    import threading

    from advisor.datasets import check

    model = tiny_model(tmp_path / "tiny")
    data = write_jsonl(tmp_path / "alpaca.jsonl", ROWS)
    app = WizardApp(answers={"goal": "domain", "gpu": "rtx3060", "model": str(model)}, lang="en")
    release, real = threading.Event(), check.run_check

    def held(*args, **kwargs):
        release.wait(20)
        return real(*args, **kwargs)

    async def go():
        async with app.run_test(size=SIZE) as pilot:
            await to_step(pilot, "data")
            await _read(pilot, data)
            await to_step_back(pilot, "goal")
            await _type_model(pilot, "7b")
            monkeypatch.setattr(check, "run_check", held)
            await to_step(pilot, "data")
            step = app.screen.query_one("#data-step")
            assert step.busy and "the model changed from" in step.text and "to 7b" in step.text
            await pilot.press("ctrl+n")
            assert app.step == "data" and "the data is still being read" in str(app.screen.query_one("#status").render())
            release.set()
            await until(pilot, lambda: not step.busy)
            await pilot.press("ctrl+n")
            await pilot.pause()
            return app.step

    assert asyncio.run(go()) == "resources"
    assert app.state.dataset_model == "7b" and not app.state.dataset_is_stale()
