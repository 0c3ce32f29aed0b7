"""Step 7: save the run directory (advisor.scriptgen.write_run, in a worker), save and launch it (the launcher
takes over after the app exits), or quit. The app returns the Plan either way.

The folder can be changed here (the same field as on the script step). A folder that already holds files is
never written without the overwrite tick: the refusal is shown on the status line and the wizard stays open
with every answer kept."""

from __future__ import annotations

import shlex
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.message import Message
from textual.widgets import Button, Checkbox, Input, Label, Static

from ...errors import AdvisorError
from ..i18n import t
from ..plan_calls import write_run
from .base import StepScreen
from .recommend import method_label


def folder_taken(path: Path) -> bool:
    """A folder with files in it, or a file where the folder should be: write_run refuses both without force."""
    return path.exists() and (not path.is_dir() or any(path.iterdir()))


class FinishScreen(StepScreen):
    STEP = "finish"
    DEFAULT_CSS = """
    #finish-dir { height: 1; margin-top: 1; }
    #finish-run-dir { width: 1fr; }
    """
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
        plan = self.state.planned()
        pipeline, adapt = method_label(plan.pipeline, plan.adaptation, self.lang)
        hw = plan.hardware
        yield Label(t("finish_head", self.lang), classes="section")
        yield Static(
            escape(t("summary", self.lang, pipeline=pipeline, adaptation=adapt, model=plan.model.name, gpu=hw.gpu_name or hw.gpu, count=hw.count)),
            id="summary",
        )
        fits = plan.estimate.fits if plan.estimate else True
        if plan.estimate is not None:
            line = t("estimate_line", self.lang, gib=plan.estimate.device_gib, cap=hw.memory_gib)
            yield Static(escape(("✓ " if fits else "✗ ") + line), id="finish-estimate", classes="-fits" if fits else "-over")
        if any(s.setup.train == "grpo" and not (s.reward_from or s.reward_model or s.reward_fn or s.reward_check) for s in plan.stages):
            yield Static(escape("⚠ " + t("placeholder_reward", self.lang)), id="finish-reward", classes="-over")
        with Horizontal(id="finish-dir"):
            yield Label(f"{t('will_write_to', self.lang)}:", classes="knob-label")
            yield Input(self.state.run_dir, id="finish-run-dir", compact=True, select_on_focus=False)
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

    @on(Input.Changed, "#finish-run-dir")
    def _run_dir(self, event: Input.Changed) -> None:
        event.stop()
        if event.value.strip():
            self.state.run_dir = event.value.strip()

    def write(self, then: str) -> None:
        run_dir = self.query_one("#finish-run-dir", Input).value.strip()
        if not run_dir:
            self.set_status(t("folder_empty", self.lang), error=True)
            return
        self.state.run_dir = run_dir
        force = self.query_one("#overwrite", Checkbox).value
        if not force and folder_taken(Path(run_dir)):
            # said here, before any work: the user ticks overwrite or types another folder, nothing is lost
            self.set_status(t("folder_taken", self.lang, path=run_dir), error=True)
            return
        for button in self.query(Button):
            button.disabled = True
        self.write_worker(self.state.plan, run_dir, force, then)

    @work(thread=True, exclusive=True, group="write")
    def write_worker(self, plan, run_dir: str, force: bool, then: str) -> None:
        try:
            self.post_message(self.Written(write_run(plan, run_dir, force=force), "", then))
        except ImportError:
            self.post_message(self.Written(None, t("no_scriptgen", self.lang), then))
        except (AdvisorError, ValueError, OSError) as exc:  # "exists; overwrite?" (a race), a read-only folder, ...
            self.post_message(self.Written(None, str(exc), then))

    def on_finish_screen_written(self, message: Written) -> None:
        for button in self.query(Button):
            button.disabled = False
        if message.path is None:
            self.set_status(message.error, error=True)
            return
        self.state.saved = message.path
        self.set_status(t("saved", self.lang, path=shlex.quote(str(message.path))))  # pasted as a command
        self.wizard.finish(message.then)
