"""Step 6: the files advisor.scriptgen renders for the plan, syntax-highlighted, and where they will be written."""

from __future__ import annotations

from pathlib import PurePath

from rich.syntax import Syntax
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, ScrollableContainer
from textual.markup import escape
from textual.message import Message
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from ..i18n import t
from ..plan_calls import render_files
from .base import StepScreen

LEXERS = {
    ".py": "python",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".toml": "toml",
    ".md": "markdown",
    ".sh": "bash",
    ".json": "json",
    ".jsonl": "json",
    ".txt": "text",
    ".cfg": "ini",
}


def file_rank(path: str) -> tuple[int, int]:
    """Training scripts first (train_<stage>.py, then the common.py they import), then configs and the plan, then
    the rest (README, data samples)."""
    name = PurePath(path)
    if name.suffix.lower() == ".py":
        return (0 if name.name.startswith("train_") else 1), path.count("/")
    order = {".sh": 2, ".yaml": 3, ".yml": 3, ".toml": 4}
    return order.get(name.suffix.lower(), 5), path.count("/")


def lexer_for(path: str) -> str:
    return LEXERS.get(PurePath(path).suffix.lower(), "text")


class ScriptScreen(StepScreen):
    STEP = "script"
    AUTO_FOCUS = "#files"  # Up/Down pick the file to preview

    class Rendered(Message):
        def __init__(self, files: dict[str, str] | None, error: str = "") -> None:
            super().__init__()
            self.files, self.error = files, error

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, str] = {}

    def body(self) -> ComposeResult:
        with Horizontal(id="run-dir-row"):
            yield Label(f"{t('will_write_to', self.lang)}:", classes="knob-label")  # nothing is written until Finish
            yield Input(self.state.run_dir, id="run-dir", compact=True, select_on_focus=False)
        with Horizontal(id="script-panes"):
            yield OptionList(id="files", compact=True)
            with ScrollableContainer(id="preview-scroll"):
                yield Static(t("rendering", self.lang), id="preview")

    def on_mount(self) -> None:
        self.render_plan(self.state.plan)

    @work(thread=True, exclusive=True, group="render")
    def render_plan(self, plan) -> None:
        try:
            self.post_message(self.Rendered(render_files(plan)))
        except ImportError:
            self.post_message(self.Rendered(None, t("no_scriptgen", self.lang)))
        except (ValueError, OSError) as exc:  # AdvisorError and friends: the message is for the user
            self.post_message(self.Rendered(None, str(exc)))

    def on_script_screen_rendered(self, message: Rendered) -> None:
        preview = self.query_one("#preview", Static)
        if message.files is None:
            preview.update(Text(message.error, style="bold red"))
            self.set_status(message.error, error=True)
            return
        self.files = dict(sorted(message.files.items(), key=lambda item: file_rank(item[0])))
        files = self.query_one("#files", OptionList)
        files.clear_options()
        files.add_options([Option(escape(path), id=path) for path in self.files])
        if self.files:
            files.highlighted = 0
            self.show_file(next(iter(self.files)))
        self.set_status(f"{len(self.files)} {t('files', self.lang).lower()} → {self.state.run_dir}/")

    def show_file(self, path: str) -> None:
        text = self.files.get(path, "")
        self.query_one("#preview", Static).update(
            Syntax(text, lexer_for(path), theme="monokai", line_numbers=True, word_wrap=False, background_color="default")
        )
        self.query_one("#preview-scroll").scroll_home(animate=False)

    @on(OptionList.OptionHighlighted, "#files")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id:
            self.show_file(event.option.id)

    @on(Input.Changed, "#run-dir")
    def _run_dir(self, event: Input.Changed) -> None:
        event.stop()
        self.state.run_dir = event.value.strip() or self.state.run_dir
        if self.files:
            self.set_status(f"{len(self.files)} {t('files', self.lang).lower()} → {self.state.run_dir}/")
