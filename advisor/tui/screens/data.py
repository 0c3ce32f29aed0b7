"""Step 2: the data questions and the file field (screens/questions.py has what the question steps share)."""

from __future__ import annotations

from textual.app import ComposeResult

from ...paths import absolute
from ..i18n import t
from .questions import QuestionsScreen


class DataScreen(QuestionsScreen):
    """The data questions, then a file field (issue 17): a checked file answers them, and the plan's stages that take
    its kind of data train on it (WizardState.dataset). Its tokens are counted with the model chosen on the goal step;
    when the user went back and chose another model, the file is read again with the new one's tokenizer as soon as
    this step shows, and Next waits for it, so the plan never uses lengths counted by another tokenizer."""

    STEP = "data"
    FROM_DATA = ("data", "data_count", "seq_len")

    def body(self) -> ComposeResult:
        from ..widgets.data_step import DataStep

        yield from super().body()
        yield DataStep(self.lang, model=self.state.model() or None, id="data-step")

    def on_mount(self) -> None:
        super().on_mount()
        state, step = self.state, self.query_one("#data-step")
        if state.dataset is None:
            return
        if state.dataset_is_stale():
            step.start(state.dataset, t("data_remeasure", self.lang, old=state.dataset_model or "?", new=state.model()))
        elif state.dataset_check:
            step.show(state.dataset_check)

    def problems(self) -> list[str]:
        busy = any(step.busy for step in self.query("#data-step"))
        return super().problems() + ([t("data_busy", self.lang)] if busy else [])

    def on_data_step_checked(self, message) -> None:
        """Merge what the data says: its kind is added to the `data` choices, the count and the sequence length
        fill the answers not given by hand (a value an earlier file, or an earlier count of this one, filled is
        replaced)."""
        message.stop()
        answers, state = message.answers, self.state
        if not answers:  # unusable: its verdict is shown in the widget; nothing is planned from it
            self._drop_data()
            return
        filled = state.from_data
        picked = list(state.raw.get("data") or [])
        if answers["data"] not in picked:
            self._set("data", [*picked, answers["data"]])
        for qid in ("data_count", "seq_len"):
            if qid in filled or qid not in state.clean_answers():
                self._set(qid, answers[qid])
                filled.add(qid)
        state.dataset = absolute(message.data["source"]["path"])
        state.dataset_answer = answers["data"]
        state.dataset_model = self.query_one("#data-step").model
        state.dataset_check = message.data
        from ...datasets.wire import remember

        remember(state.dataset, state.dataset_model, message.data)

    def on_data_step_failed(self, message) -> None:
        """A path that cannot be read (or no longer can, with the new tokenizer): the plan does not use it."""
        message.stop()
        self._drop_data()

    def _drop_data(self) -> None:
        """No file is planned from; the sequence length it filled goes too (its tokens were counted from that file)."""
        state = self.state
        state.dataset = state.dataset_check = state.dataset_model = None
        if "seq_len" in state.from_data:
            state.from_data.discard("seq_len")
            self._set("seq_len", "")

    def _set(self, qid: str, value) -> None:
        """Through the field's control when it is on this screen (the control then stores it), else straight into the state."""
        from textual.widgets import Checkbox, Input

        if qid == "data":
            for v in value:
                self.query_one(f"#q-data-{v}", Checkbox).value = True
            self.state.set_answer("data", value)
        elif self.query(f"#q-{qid}"):
            self.query_one(f"#q-{qid}", Input).value = str(value)
            self.state.set_answer(qid, str(value))
        else:
            self.state.set_answer(qid, str(value))
