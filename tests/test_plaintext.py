"""advisor/plaintext.py writes what rich writes to a stream that is not a terminal, character for character, and
hands anything it is unsure of back to rich."""

from __future__ import annotations

import io

import pytest
from rich.cells import cell_len
from rich.console import Console

from advisor import plaintext
from advisor.render import TableSpec, estimate_blocks, plain_lines, print_blocks
from estimators import estimate
from estimators.catalog import resolve_model
from estimators.gpus import find_gpu
from estimators.report import estimate_dict
from estimators.setup import Setup
from estimators.time_report import Dataset, time_dict, time_lines

CASES = [
    ("7b", {}, None),
    ("llama-3.1-70b", {"adaptation": "full", "gpus": 8, "parallel": "fsdp"}, "h100"),
    ("mixtral-8x7b", {"adaptation": "qlora"}, "rtx4090"),
    ("qwen2.5-7b", {"train": "grpo", "adaptation": "lora"}, "a100-80gb"),
    ("gpt2", {"adaptation": "full", "optimizer": "paged_adamw8bit"}, None),
    ("llama-3.1-8b", {"adaptation": "full", "precision": "bf16-mixed"}, "24GB"),
]
WIDTHS = (60, 63, 71, 80, 97, 120, 200)


def blocks(key: str, changes: dict, gpu_id: str | None) -> list:
    resolved, gpu = resolve_model(key), find_gpu(gpu_id) if gpu_id else None
    est = estimate(resolved.spec, Setup(**changes))
    out = estimate_blocks(estimate_dict(est, resolved.how, resolved.key, gpu))
    if gpu is not None and gpu.timed:
        out += time_lines(time_dict(resolved.spec, est.setup, gpu, Dataset(tokens=10**8)))
    return out


def rich_text(items: list, width: int) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=width)
    for item in items:
        console.print(item.to_rich() if isinstance(item, TableSpec) else item)
    return buf.getvalue()


@pytest.mark.parametrize("key,changes,gpu_id", CASES)
def test_estimate_output_is_rich_s(key, changes, gpu_id):
    items = blocks(key, changes, gpu_id)
    for width in WIDTHS:
        assert "".join(line + "\n" for line in plain_lines(items, width)) == rich_text(items, width), width


def test_wrapping_and_tables_at_the_edges():
    long_word = "x" * 150
    items = [
        f"[bold]a[/bold] {long_word} tail  with  double  spaces   at the end of a line that is long enough to wrap here",
        "trailing spaces   ",
        "",
        TableSpec(
            "a title far longer than the table it belongs to, so that it has to wrap onto a second line",
            ("h", "col"),
            [("1", "2"), None, ("[bold]3[/bold]", "a cell " * 30)],
        ),
        TableSpec("ellipsis", ("a", "b", "c"), [(long_word, long_word, "z")]),
        TableSpec("section at the end", ("a",), [("1",), None]),
        TableSpec("", ("empty", ""), [("", "")]),
    ]
    for width in WIDTHS:
        assert "".join(line + "\n" for line in plain_lines(items, width)) == rich_text(items, width), width


@pytest.mark.parametrize("markup", ["name [with] brackets", "한국어 모델", "smile :smile: please", "[italic]x[/italic]", "tab\there", "back\\slash"])
def test_what_only_rich_knows_is_refused(markup):
    with pytest.raises(plaintext.Unsupported):
        plain_lines([markup], 80)
    with pytest.raises(plaintext.Unsupported):
        plain_lines([TableSpec("t", ("a",), [(markup,)])], 80)


def test_refused_text_is_printed_by_rich(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    items = ["[bold]모델[/bold] [x] :smile:", TableSpec("t", ("a", "b"), [("한국어", "[green]yes[/green]")])]
    print_blocks(items)
    assert capsys.readouterr().out == rich_text(items, 80)


def test_plain_output_is_used_when_stdout_is_not_a_terminal(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "90")
    monkeypatch.setattr(plaintext, "table", lambda *a: ["TABLE"])  # proves the plain path ran
    print_blocks(["a", TableSpec("t", ("a",), [("1",)])])
    assert capsys.readouterr().out == "a\nTABLE\n"


def test_rich_is_used_when_colour_is_forced(monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert not plaintext.wanted(io.StringIO())
    monkeypatch.delenv("FORCE_COLOR")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    assert not plaintext.wanted(io.StringIO())
    monkeypatch.delenv("TTY_COMPATIBLE")

    class Ascii(io.StringIO):
        encoding = "ascii"

    assert not plaintext.wanted(Ascii())


def test_width_follows_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "123")
    assert plaintext.console_width() == 123
    monkeypatch.setenv("COLUMNS", "wide")
    assert plaintext.console_width() == Console(file=io.StringIO()).width


def test_the_one_cell_characters_are_one_cell_for_rich():
    assert all(cell_len(ch) == 1 for ch in plaintext.ONE_CELL)
