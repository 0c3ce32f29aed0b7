"""The frame every step shares: the step bar on top, the step's body, Back / status / Next, the key footer (the
buttons and the footer are widgets/chrome.py's NavButton and KeyBar, drawn as Button and Footer draw them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import Button, Static

from ..i18n import localize_bindings, step_name, t
from ..state import STEPS, WizardState
from ..widgets import compact
from ..widgets.chrome import KeyBar, NavButton

if TYPE_CHECKING:
    from ..app import WizardApp


def step_bar(step: str, lang: str) -> Content:
    """The seven steps on one line, the current one highlighted (it fits 80 columns; the app's name is its title).
    Textual's Content, which the Static draws as it is (a rich Text it would convert first)."""
    parts: list[str | tuple[str, str]] = []
    for i, name in enumerate(STEPS, 1):
        label = f" {i} {step_name(name, lang)} "
        if name == step:
            parts.append((label, "bold reverse"))
        elif STEPS.index(name) < STEPS.index(step):
            parts.append((label, "dim"))
        else:
            parts.append(label)
    return Content.assemble(*parts)


class StepScreen(Screen):
    STEP: ClassVar[str] = ""
    _shown = False  # whether the screen has been shown (resumed) once: see on_screen_resume

    def on_mount(self) -> None:
        localize_bindings(self, self.lang)

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        """Skip the restyle of a screen's first showing: Textual styles every widget as it is mounted, and then again
        when the screen resumes, which doubles the styling of the first frame for nothing (no style source or class
        changed between the two). Later resumes (the app back from a suspend) restyle as usual. Runs before Screen's own
        handler, which reads the flag."""
        if not self._shown:
            self._shown = True
            event.refresh_styles = False

    def on_resize(self, event: events.Resize) -> None:
        """Skip a resize to the size the screen is laid out at: Textual's first layout of a screen posts the screen a
        Resize to the same size, and Screen's handler lays everything out again."""
        if event.size == self._size:
            event.prevent_default()

    @property
    def wizard(self) -> "WizardApp":
        return self.app  # type: ignore[return-value]

    @property
    def state(self) -> WizardState:
        return self.wizard.state

    @property
    def lang(self) -> str:
        return self.state.lang

    def compose(self) -> ComposeResult:
        yield Static(step_bar(self.STEP, self.lang), id="stepbar")
        with VerticalScroll(id="body"):
            yield from self.body()
        with Horizontal(id="nav"):
            yield compact(NavButton(f"◀ {t('back', self.lang)}", id="back", disabled=self.STEP == STEPS[0]))
            yield Static("", id="status")
            if self.STEP != STEPS[-1]:
                yield compact(NavButton(f"{t('next', self.lang)} ▶", id="next", variant="primary"))
        yield KeyBar()

    def body(self) -> ComposeResult:
        yield from ()

    def problems(self) -> list[str]:
        """What keeps the user on this step (shown on the status line when they press Next)."""
        return []

    def set_status(self, text: str, error: bool = False) -> None:
        status = self.query_one("#status", Static)
        status.set_class(error, "-error")
        if getattr(status, "_shown", None) != text:  # an unchanged line costs no layout pass
            status._shown = text
            status.update(escape(text))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Back and Next (one handler, not one `@on` per button: each `@on` selector is parsed as CSS when this module
        is imported, before the first frame); other buttons' presses go on to the step's own handlers."""
        if event.button.id == "back":
            event.stop()
            self.wizard.action_back()
        elif event.button.id == "next":
            event.stop()
            self.wizard.action_next()
