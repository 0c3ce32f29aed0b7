"""The wizard's data step (issue 17): a file field; the data is checked in a worker thread, the progress shown as it
is read, then the summary with the token histogram. It posts DataStep.Checked with the answers the data gives
(data, data_count, seq_len: advisor/datasets/advice.py), for the app to merge into its state.

Not wired into advisor/tui/app.py (owned elsewhere); to wire it: yield DataStep(lang) in the body of the
questions screen before the seq_len question (or as its own StepScreen), and in the screen handle
`on_data_step_checked(message)` by setting each key of message.answers the user has not answered yet.
"""

from __future__ import annotations

import time

from rich.console import Group
from textual import on, work
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static

LABEL = {"en": "Your training data (a .jsonl/.json/.csv/.parquet file, a folder or a cached hub dataset id), then Enter",
         "ko": "학습 데이터 (.jsonl/.json/.csv/.parquet 파일, 폴더 또는 캐시된 허브 데이터셋 id) 입력 후 Enter"}
READING = {"en": "reading {path}: {pct} ({mb:,.1f} MB)", "ko": "{path} 읽는 중: {pct} ({mb:,.1f} MB)"}
PROGRESS_EVERY_S = 0.1  # at most ten redraws a second from the reading thread


class DataStep(Vertical):
    DEFAULT_CSS = """
    DataStep { height: auto; }
    DataStep #data-summary { height: auto; padding: 0 1; }
    """

    class Checked(Message):
        def __init__(self, data: dict, answers: dict) -> None:
            super().__init__()
            self.data, self.answers = data, answers

    def __init__(self, lang: str = "en", model: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lang, self.model = lang, model
        self.data: dict | None = None
        self.text = ""

    def compose(self):
        yield Static(LABEL.get(self.lang, LABEL["en"]), id="data-label")
        yield Input(placeholder="train.jsonl", id="data-path")
        yield Static("", id="data-summary")

    @on(Input.Submitted, "#data-path")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.check(event.value.strip())

    @work(thread=True, exclusive=True)
    def check(self, path: str) -> None:
        """Read and check in a thread; the UI is touched only through call_from_thread."""
        from ...datasets import sources
        from ...datasets.advice import data_answers
        from ...datasets.check import Options, run_check
        from ...datasets.counters import counter_for

        try:
            source = sources.resolve(path)
            counter, _ = counter_for(None, self.model)
            total, seen, last = source.size_bytes, [0], [0.0]

            def on_bytes(n: int) -> None:
                seen[0] += n
                now = time.monotonic()
                if now - last[0] >= PROGRESS_EVERY_S:
                    last[0] = now
                    pct = f"{seen[0] / total:.0%}" if total else "?"
                    self.app.call_from_thread(self._show, READING.get(self.lang, READING["en"]).format(path=path, pct=pct, mb=seen[0] / 1e6))

            data = run_check(source, counter, Options(), on_bytes)
        except Exception as exc:  # noqa: BLE001  bad input (AdvisorError, EstimateError) or a read error: shown, never a crash
            self.app.call_from_thread(self._show, f"[red]{_escape(str(exc))}[/red]")
            return
        answers = data_answers(data) if data["usable"] else {}
        self.app.call_from_thread(self._done, data, answers)

    def _show(self, markup) -> None:
        from rich.text import Text

        lines = markup.renderables if isinstance(markup, Group) else [markup]
        self.text = "\n".join(Text.from_markup(x).plain if isinstance(x, str) else str(x) for x in lines)  # what is shown, as plain text
        self.query_one("#data-summary", Static).update(markup)

    def _done(self, data: dict, answers: dict) -> None:
        self.data = data
        self._show(Group(*compact(data, self.lang)))
        self.post_message(self.Checked(data, answers))


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def compact(data: dict, lang: str = "en") -> list:
    """The few lines that fit the wizard: type, rows, the largest problems, the histogram, the plan, the verdict."""
    from ...datasets.render import histogram_text

    out: list = []
    t, rows = data.get("type"), data["rows"]
    if t:
        out.append(f"[bold]{t['label']}[/bold]: {rows['usable']:,}/{rows['read']:,} rows usable")
        fed = [k for k, v in data["kinds"].items() if v["ok"]]
        out.append(f"can train: {', '.join(fed) or 'nothing'}")
    for p in data["problems"][:3]:
        out.append(f"[{'red' if p['severity'] == 'error' else 'yellow'}]{p['kind']}[/]: {p['count']:,} rows (first {', '.join(map(str, p['first_rows']))})")
    tok, rec = data.get("tokens"), data.get("recommendation")
    if tok:
        out.append(histogram_text(tok["histogram"], tok["seq_len"]))
    if rec:
        out.append(f"--seq-len {rec['seq_len']:,} (keeps {rec['rows_whole']:.1%} whole), packing {'on' if rec['packing'] else 'off'}")
    color = "green" if data["usable"] else "red"
    out.append(f"[{color}]{_escape(data['verdict'])}[/{color}]")
    return out
