"""The wizard's data step widget (advisor/tui/widgets/data_step.py) through Pilot, in a one-widget app (the wizard's
app.py wires it elsewhere): a path typed and submitted is checked in a thread, the summary and histogram appear,
and the answers the data gives are posted; bad input shows its one line in the widget."""

from __future__ import annotations

import asyncio
import time

from data_corpus import write_jsonl
from textual.app import App
from textual.widgets import Input

from advisor.tui.widgets.data_step import DataStep


class Host(App):
    def __init__(self):
        super().__init__()
        self.checked = []

    def compose(self):
        yield DataStep("en")

    def on_data_step_checked(self, message: DataStep.Checked) -> None:
        self.checked.append(message.answers)
        self.data = message.data


async def _submit(pilot, path: str) -> str:
    pilot.app.query_one("#data-path", Input).value = path
    await pilot.press("enter")
    deadline = time.monotonic() + 20
    step = pilot.app.query_one(DataStep)
    while True:
        await pilot.pause(0.05)
        text = step.text
        done = pilot.app.checked or (text and not text.startswith("reading"))
        if done or time.monotonic() > deadline:
            await pilot.pause()
            return text


def test_a_file_is_checked_and_its_answers_posted(tmp_path):
    rows = [{"prompt": f"Q{i}?", "chosen": f"A good answer {i}.", "rejected": "No."} for i in range(30)]
    f = write_jsonl(tmp_path / "p.jsonl", rows)
    app = Host()

    async def go():
        async with app.run_test(size=(100, 40)) as pilot:
            text = await _submit(pilot, str(f))
            assert "preference (explicit prompt), standard" in text and "sequence tokens per row" in text

    asyncio.run(go())
    assert len(app.checked) == 1
    answers = app.checked[0]
    assert (answers["data"], answers["data_count"]) == ("preference_pairs", 30)
    assert answers["seq_len"] == app.data["recommendation"]["seq_len"] and answers["seq_len"] % 64 == 0


def test_bad_input_is_shown_not_raised(tmp_path):
    (tmp_path / "g.jsonl").write_bytes(b"\x00\x01\x02" * 100)
    app = Host()
    seen = []

    async def go():
        async with app.run_test(size=(100, 40)) as pilot:
            seen.append(await _submit(pilot, str(tmp_path / "g.jsonl")))

    asyncio.run(go())
    assert "holds binary data" in seen[0]
    assert app.checked == []


def test_snapshot(snap_compare):
    """80x24: the bundled preference sample, its summary and histogram."""

    async def before(pilot):
        pilot.app.query_one("#data-path", Input).cursor_blink = False
        await _submit(pilot, "advisor/data/preferences.jsonl")
        await pilot.pause()

    assert snap_compare(Host(), terminal_size=(80, 24), run_before=before)
