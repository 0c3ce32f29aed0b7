"""Step 7: save the run directory (advisor.scriptgen.write_run, in a worker), save and launch it (the launcher
takes over after the app exits), or quit. The app returns the Plan either way."""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.markup import escape
from textual.message import Message
from textual.widgets import Button, Checkbox, Label, Static

from ..i18n import t
from ..state import write_run
from .base import StepScreen
from .recommend import method_label


class FinishScreen(StepScreen):
    STEP = "finish"
    BINDINGS = [
        Binding("s", "save", "Save"),
        Binding("l", "launch", "Launch"),
        Binding("q", "quit_plan", "Quit"),
    ]

    class Written(Message):
        def __init__(self, path: Path | None, error: str, then: str) -> None:
            super().__init__()
            self.path, self.error, self.then = path, error, then

    def body(self) -> ComposeResult:
        plan = self.state.plan
        method, adapt = method_label(plan.method, plan.adaptation, self.lang)
        hw = plan.hardware
        yield Label(t("finish_head", self.lang), classes="section")
        yield Static(escape(t("summary", self.lang, method=method, adaptation=adapt, model=plan.model.name,
                                gpu=hw.gpu_name or hw.gpu, count=hw.count)), id="summary")
        fits = plan.estimate.fits if plan.estimate else True
        if plan.estimate is not None:
            line = t("estimate_line", self.lang, gib=plan.estimate.device_gib, cap=hw.memory_gib)
            yield Static(escape(("✓ " if fits else "✗ ") + line), id="finish-estimate", classes="-fits" if fits else "-over")
        yield Static(escape(f"{t('write_to', self.lang)}: {self.state.run_dir}/"), id="finish-dir")
        with Vertical(id="finish-actions"):
            yield Button(f"{t('save', self.lang)} (s)", id="save", compact=True, variant="primary")
            yield Button(f"{t('launch', self.lang)} (l)", id="launch", compact=True, variant="success")
            yield Button(f"{t('quit_plan', self.lang)} (q)", id="quit-plan", compact=True)
            yield Checkbox(t("overwrite", self.lang), id="overwrite", compact=True)

    AUTO_FOCUS = "#save"

    @on(Button.Pressed, "#save")
    def _save(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_save()

    @on(Button.Pressed, "#launch")
    def _launch(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_launch()

    @on(Button.Pressed, "#quit-plan")
    def _quit(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_quit_plan()

    def action_save(self) -> None:
        self.write("save")

    def action_launch(self) -> None:
        self.write("launch")

    def action_quit_plan(self) -> None:
        self.wizard.finish("quit")

    def write(self, then: str) -> None:
        for button in self.query(Button):
            button.disabled = True
        force = self.query_one("#overwrite", Checkbox).value
        self.write_worker(self.state.plan, self.state.run_dir, force, then)

    @work(thread=True, exclusive=True, group="write")
    def write_worker(self, plan, run_dir: str, force: bool, then: str) -> None:
        try:
            self.post_message(self.Written(write_run(plan, run_dir, force=force), "", then))
        except ImportError:
            self.post_message(self.Written(None, t("no_scriptgen", self.lang), then))
        except (ValueError, OSError) as exc:  # AdvisorError ("exists; overwrite?"), a read-only folder, ...
            self.post_message(self.Written(None, str(exc), then))

    def on_finish_screen_written(self, message: Written) -> None:
        for button in self.query(Button):
            button.disabled = False
        if message.path is None:
            self.set_status(message.error, error=True)
            return
        self.state.saved = message.path
        self.set_status(t("saved", self.lang, path=str(message.path)))
        self.wizard.finish(message.then)
