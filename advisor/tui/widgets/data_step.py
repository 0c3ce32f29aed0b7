"""The wizard's data step (issue 17): a file field; the data is checked in a worker thread, the progress shown as it
is read, then the summary with the token histogram and the tokenizer that counted it. It posts DataStep.Checked with
the answers the data gives (data, data_count, seq_len: advisor/datasets/advice.py), or DataStep.Failed with the one
line shown, for the data screen (advisor/tui/screens/data.py DataScreen) to merge into the wizard's state.

The tokens are counted with the model the user chose on the goal step (its tokenizer.json and chat template, found
by advisor/datasets/counters.py find_tokenizer), else with the stated approximation; the summary says which.
"""

from __future__ import annotations

import time

from rich.console import Group
from textual import on, work
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static

from ..i18n import t

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

    class Failed(Message):
        """The path could not be read or checked: nothing is planned from it (the line is in the widget)."""

        def __init__(self, path: str, error: str) -> None:
            super().__init__()
            self.path, self.error = path, error

    def __init__(self, lang: str = "en", model: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lang, self.model = lang, model or None  # whose tokenizer counts (None: the approximation)
        self.data: dict | None = None
        self.text = ""
        self.busy = False  # a check is running: the data screen keeps the user on it until it is done

    def compose(self):
        yield Static(t("data_label", self.lang), id="data-label")
        yield Input(placeholder="train.jsonl", id="data-path")
        yield Static("", id="data-summary")

    @on(Input.Submitted, "#data-path")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.start(event.value.strip())

    def start(self, path: str, note: str = "") -> None:
        """Check `path` (in a thread); `note` (plain text) is shown while it is read (why it is read again)."""
        self.busy, note = True, _escape(note)
        self.query_one("#data-path", Input).value = path
        self._show(note or t("data_reading", self.lang, path=_escape(path), pct="0%", mb=0.0))
        self.check(path, note)

    def show(self, data: dict) -> None:
        """An earlier check of the file in the field, shown again (the user came back to this step)."""
        self.data = data
        self.query_one("#data-path", Input).value = data["source"]["path"]
        self._show(Group(*compact(data, self.lang, self.model)))

    @work(thread=True, exclusive=True)
    def check(self, path: str, note: str = "") -> None:
        """Read and check in a thread (`note`: markup shown above the progress); the UI is touched only through
        call_from_thread. Call `start`, which marks the widget busy."""
        from ...datasets import sources
        from ...datasets.advice import data_answers
        from ...datasets.check import Options, run_check
        from ...datasets.counters import counter_for

        try:
            source = sources.resolve(path)
            counter, why = counter_for(None, self.model)
            total, seen, last = source.size_bytes, [0], [0.0]
            head = f"{note}\n" if note else ""

            def on_bytes(n: int) -> None:
                seen[0] += n
                now = time.monotonic()
                if now - last[0] >= PROGRESS_EVERY_S:
                    last[0] = now
                    pct = f"{seen[0] / total:.0%}" if total else "?"
                    self.app.call_from_thread(self._show, head + t("data_reading", self.lang, path=_escape(path), pct=pct, mb=seen[0] / 1e6))

            data = run_check(source, counter, Options(), on_bytes)
            if data.get("tokens"):
                data["tokens"]["counter"]["why"] = why  # as `advisor data check` and the plan's checks record it
        except Exception as exc:  # noqa: BLE001  bad input (AdvisorError, EstimateError) or a read error: shown, never a crash
            self.app.call_from_thread(self._failed, path, str(exc))
            return
        answers = data_answers(data) if data["usable"] else {}
        self.app.call_from_thread(self._done, data, answers)

    def _show(self, markup) -> None:
        from rich.text import Text

        lines = markup.renderables if isinstance(markup, Group) else [markup]
        self.text = "\n".join(Text.from_markup(x).plain if isinstance(x, str) else str(x) for x in lines)  # what is shown, as plain text
        self.query_one("#data-summary", Static).update(markup)

    def _done(self, data: dict, answers: dict) -> None:
        self.data, self.busy = data, False
        self._show(Group(*compact(data, self.lang, self.model)))
        self.post_message(self.Checked(data, answers))

    def _failed(self, path: str, error: str) -> None:
        self.data, self.busy = None, False
        self._show(f"[red]{_escape(error)}[/red]")
        self.post_message(self.Failed(path, error))


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def counted_with(data: dict, model: str | None, lang: str = "en") -> str:
    """Whose tokens the lengths are: the model's own tokenizer (and chat template), or the approximation and why."""
    counter = (data.get("tokens") or {}).get("counter") or {}
    if counter.get("exact"):
        key = "data_tokenizer_template" if counter.get("template") else "data_tokenizer"
        return t(key, lang, model=_escape(counter.get("name") or model or ""))
    if model:
        return t("data_approx_model", lang, model=_escape(model))
    return t("data_approx", lang)


def compact(data: dict, lang: str = "en", model: str | None = None) -> list:
    """The few lines that fit the wizard: type, rows, the largest problems, whose tokens, the histogram, the plan,
    the verdict."""
    from ...datasets.render import histogram_text

    out: list = []
    found, rows = data.get("type"), data["rows"]
    if found:
        out.append(f"[bold]{found['label']}[/bold]: {rows['usable']:,}/{rows['read']:,} rows usable")
        fed = [k for k, v in data["kinds"].items() if v["ok"]]
        out.append(f"can train: {', '.join(fed) or 'nothing'}")
    for p in data["problems"][:3]:
        out.append(
            f"[{'red' if p['severity'] == 'error' else 'yellow'}]{p['kind']}[/]: {p['count']:,} rows (first {', '.join(map(str, p['first_rows']))})"
        )
    tok, rec = data.get("tokens"), data.get("recommendation")
    if tok:
        out.append(f"[dim]{counted_with(data, model, lang)}[/dim]")
        out.append(histogram_text(tok["histogram"], tok["seq_len"]))
    if rec:
        out.append(f"--seq-len {rec['seq_len']:,} (keeps {rec['rows_whole']:.1%} whole), packing {'on' if rec['packing'] else 'off'}")
    color = "green" if data["usable"] else "red"
    out.append(f"[{color}]{_escape(data['verdict'])}[/{color}]")
    return out
