"""The wizard: `WizardApp(App[Plan])`. Seven steps over one WizardState; the app returns the Plan, and
`action` says what the user asked for at the end ("save", "launch" or "quit"; None if they left early)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from . import gc_pause
from .i18n import localize_bindings, t
from .state import DEFAULT_RUN_DIR, STEPS, WizardState

_collecting = gc_pause.pause()  # Textual is imported without the collector walking its objects (advisor/tui/gc_pause.py)
try:
    from textual import work  # noqa: E402
    from textual.app import App  # noqa: E402
    from textual.binding import Binding  # noqa: E402
    from textual.screen import Screen  # noqa: E402
finally:
    gc_pause.resume(_collecting, freeze=True)

if TYPE_CHECKING:
    # used only in the string base App["Plan"], which ruff does not read; pydantic loads after the first paint
    from ..plan import Plan  # noqa: F401


class WizardApp(App["Plan"]):
    CSS_PATH = Path(__file__).with_name("advisor.tcss")  # absolute: subclasses elsewhere (tests, bench) find it
    STEP_CSS_PATH = Path(__file__).with_name("advisor_steps.tcss")  # the later steps' rules: see load_step_css
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("ctrl+n", "next", "Next", priority=True),
        Binding("escape", "back", "Back"),
        Binding("ctrl+g", "glossary", "Glossary", priority=True),
        Binding("ctrl+q", "quit_wizard", "Quit", priority=True),
    ]

    def __init__(self, answers: Mapping[str, Any] | None = None, lang: str = "en", run_dir: str = DEFAULT_RUN_DIR, step: str = STEPS[0]) -> None:
        super().__init__()
        self.state = WizardState(lang=lang, raw=dict(answers or {}), run_dir=run_dir)
        for qid, raw in list(self.state.raw.items()):
            self.state.set_answer(qid, raw, lookup=False)
        self.step = step
        self.action: str | None = None  # "save" | "launch" | "quit"
        self._painted = False  # the first frame is on the screen (the Ready event)
        self._after_paint: list[Callable[[], None]] = []  # what waits for it (after_first_frame)
        self.title = t("title", lang)
        localize_bindings(self, lang)

    @property
    def saved(self) -> Path | None:
        return self.state.saved

    _collecting: bool | None = None  # the collector's state before on_load paused it; None once it is restored

    def on_load(self) -> None:
        self._collecting = gc_pause.pause()  # until the first frame (on_ready), or the app's end if it never comes

    def _collect_again(self) -> None:
        if self._collecting is not None:
            gc_pause.resume(self._collecting)
            self._collecting = None
            gc_pause.thaw()

    def on_unmount(self) -> None:
        self._collect_again()

    def get_default_screen(self) -> Screen:
        """The first step's screen, as the app's first screen. Pushed over Textual's default screen, it would be the
        second, and that one (never shown) built, styled, resumed and replaced before the first frame."""
        return self._screen(self.step)

    def after_first_frame(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the first frame is painted (at once after that): a worker started before it imports
        while the screen is built, and imports compete with painting for the one interpreter lock."""
        if self._painted:
            callback()
        else:
            self._after_paint.append(callback)

    def on_ready(self) -> None:
        self._collect_again()
        self._painted = True
        for callback in self._after_paint:
            callback()
        self._after_paint.clear()
        self.load_step_css()
        self.prewarm()  # after the first frame too

    def load_step_css(self) -> None:
        """Add the rules of the steps after the goal (advisor_steps.tcss) to the stylesheet, once: after the first
        frame, or before such a step's screen is built when that comes first (a wizard started at a later step, the
        glossary). Textual parses every rule it holds before the first frame and matches each widget against them, so
        the goal step starts with only its own. No widget of the goal step matches these rules: the screen on show
        when they are added needs no restyle."""
        path = self.STEP_CSS_PATH
        if self.stylesheet.has_source(str(path)):
            return
        self.stylesheet.read(path)
        self.stylesheet.parse()  # now: only this file is parsed (the others come from the parse cache)

    @work(thread=True, group="prewarm")
    def prewarm(self) -> None:
        """Import the advisor, estimator and generator while the user reads the first screen."""
        import importlib

        for name in (
            "advisor.tui.widgets.later_fields",
            "advisor.tui.screens.data",
            "advisor.tui.screens.resources",
            "advisor.advice.advise",
            "estimators.fit",
            "advisor.scriptgen",
            "advisor.tui.screens.recommend",
            "advisor.tui.screens.memory",
            "advisor.tui.screens.script",
            "advisor.tui.screens.finish",
        ):
            try:
                importlib.import_module(name)
            except ImportError:
                pass

    def _screen(self, step: str):
        from .screens import screen_for

        if step != STEPS[0]:  # advisor.tcss styles only the goal step (and the frame)
            self.load_step_css()
        return screen_for(step)

    def show_step(self, step: str) -> None:
        self.step = step
        screen = self._screen(step)
        if len(self.screen_stack) > 1:
            self.switch_screen(screen)
            return
        # From the first screen (the app's default screen, which switch_screen cannot replace: Textual keeps no
        # result callback for it) the next step is pushed over it, and the first screen is removed as switch_screen
        # removes the screen it replaces (its widgets and its messages still in flight go with it). It stays in the
        # stack's list, under every later step and never shown again, where Textual's own default screen would be;
        # Textual passes over a screen that is no longer running when it closes the app.
        first = self.screen
        self.push_screen(screen)
        first.remove()

    # ---- actions ----------------------------------------------------------------------------------------
    def action_next(self) -> None:
        from .screens.glossary import GlossaryScreen

        screen = self.screen
        if isinstance(screen, GlossaryScreen):
            return
        i = STEPS.index(self.step)
        if i == len(STEPS) - 1:
            return
        problems = screen.problems() if hasattr(screen, "problems") else []
        if problems:
            screen.set_status(t("fix_first", self.state.lang, items="; ".join(problems)), error=True)
            return
        self.show_step(STEPS[i + 1])

    def action_back(self) -> None:
        i = STEPS.index(self.step)
        if i > 0:
            self.show_step(STEPS[i - 1])

    def action_glossary(self) -> None:
        from .screens.glossary import GlossaryScreen

        if isinstance(self.screen, GlossaryScreen):
            self.screen.dismiss()
        else:
            self.load_step_css()
            self.push_screen(GlossaryScreen(self.state.lang))

    def action_quit_wizard(self) -> None:
        self.finish("quit")

    def finish(self, action: str) -> None:
        self.action = action
        self.exit(self.state.plan)
