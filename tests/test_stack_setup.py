"""Setup.stack and Setup.versions: parsing, detection (importlib.metadata mocked), validation, the CLI flags and
the estimate output that names the stack and versions it priced."""

import importlib.metadata
import json

import pytest

from estimators.errors import EstimateError
from estimators.setup import STACKS, Setup
from estimators.stacks import for_stack, stack_line, stack_summary, stacks
from estimators.versions import (
    detect_versions,
    expand_versions,
    format_versions,
    in_range,
    parse_versions,
    pinned,
    priced_versions,
    version_tuple,
)


# ------------------------------------------------------------------------------------------------ versions
def test_parse_versions_is_canonical_and_accepts_aliases():
    assert parse_versions("transformers=4.44, bnb==0.43.3+cu121") == {"bitsandbytes": "0.43.3", "transformers": "4.44"}
    assert format_versions(parse_versions("trl=0.12,peft=0.11")) == "peft=0.11,trl=0.12"
    assert parse_versions("") == {}


@pytest.mark.parametrize(
    "text, needle",
    [
        ("transformer=4.44", "unknown package 'transformer'"),
        ("transformers", "package=version"),
        ("transformers=abc", "not a version number"),
        ("detect", "resolved by the command line"),
    ],
)
def test_parse_versions_errors_are_one_line_and_name_the_fix(text, needle):
    with pytest.raises(EstimateError) as err:
        parse_versions(text)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_unknown_package_error_lists_the_valid_ones():
    with pytest.raises(EstimateError, match="valid: torch, transformers, peft"):
        parse_versions("pytorch=2.3")


def test_version_ranges():
    assert version_tuple("2.4.0+cu121") == (2, 4, 0) and version_tuple("4.45.0.dev0") == (4, 45, 0)
    assert in_range("4.44", "<4.46") and not in_range("4.46.0", "<4.46")
    assert in_range("4.48.3", ">=4.46,<4.49") and not in_range("4.49", ">=4.46,<4.49")
    assert in_range("0.11.1", "<0.12") and not in_range("0.12", "<0.12")
    assert in_range("2.7.1", "<2.8") and in_range("5.0", ">=5") and in_range("1.0", "")


def _fake_metadata(installed: dict):
    def version(name):
        if name not in installed:
            raise importlib.metadata.PackageNotFoundError(name)
        return installed[name]

    return version


def test_detect_reads_metadata_of_installed_packages_only():
    fake = _fake_metadata({"torch": "2.4.1+cu121", "transformers": "4.44.2", "peft": "0.12.0"})
    assert detect_versions(fake) == {"torch": "2.4.1", "transformers": "4.44.2", "peft": "0.12.0"}
    assert detect_versions(_fake_metadata({})) == {}


def test_expand_detect_then_explicit_items_override():
    fake = _fake_metadata({"torch": "2.4.1", "transformers": "4.44.2"})
    assert expand_versions("detect,transformers=4.46", fake) == "torch=2.4.1,transformers=4.46"
    assert expand_versions("peft=0.11", fake) == "peft=0.11"  # no "detect": the metadata is not read


def test_detection_uses_the_real_metadata_without_importing(monkeypatch):
    """The real importlib.metadata finds this venv's transformers; nothing heavy gets imported (checked in a fresh
    process by test_stack_cli.py)."""
    found = detect_versions()
    assert found["transformers"] == importlib.metadata.version("transformers").split("+")[0]


def test_priced_versions_fall_back_to_the_pinned_ones():
    got = priced_versions("transformers=4.44", ("torch", "transformers"))
    assert got == {"torch": pinned()["torch"], "transformers": "4.44"}
    assert pinned()["transformers"] == "5.24.0"  # what the generated scripts pin (scriptgen FALLBACK_PINS)


# ------------------------------------------------------------------------------------------------ Setup
def test_setup_defaults_are_the_generated_scripts_stack():
    s = Setup()
    assert (s.stack, s.versions) == ("trl", "")
    assert hash(s.with_(versions="torch=2.4")) == hash(Setup(versions="torch=2.4"))  # frozen, hashable


def test_setup_validation_names_the_valid_stacks():
    with pytest.raises(EstimateError, match="unknown stack 'tune'; valid: trl, hf-trainer, axolotl"):
        Setup(stack="tune")
    with pytest.raises(EstimateError, match="unknown package"):
        Setup(versions="tranformers=4.4")


def test_the_stack_table_matches_setup():
    assert tuple(stacks()) == STACKS
    assert all(st.source for st in stacks().values())
    assert {st.id for st in stacks().values() if st.trainer == "hf"} >= {"hf-trainer", "axolotl", "llama-factory"}


@pytest.mark.parametrize(
    "stack, head",
    [
        ("trl", "fused"),
        ("hf-trainer", "full"),
        ("axolotl", "full"),
        ("llama-factory", "full"),
        ("litgpt", "chunked"),
        ("torchtune", "chunked"),
        ("unsloth", "chunked"),
    ],
)
def test_default_loss_means_the_stacks_own_head(stack, head):
    assert for_stack(Setup(stack=stack)).loss == head
    assert for_stack(Setup(stack=stack, loss="full")).loss == "full"  # a head given explicitly is kept


def test_trl_before_1_15_has_no_fused_head():
    assert for_stack(Setup(versions="trl=1.14.2")).loss == "full"
    assert for_stack(Setup(versions="trl=1.15.0")).loss == "fused"


def test_summary_says_which_versions_were_given():
    summary = stack_summary(Setup(stack="hf-trainer", versions="transformers=4.44"))
    assert summary["versions"]["transformers"] == "4.44" and summary["given"] == ["transformers"]
    assert summary["versions"]["torch"] == pinned()["torch"]
    assert stack_line(summary).startswith("stack=hf-trainer (torch 2.13.0, transformers 4.44 given")


# ------------------------------------------------------------------------------------------------ CLI
def test_estimate_prints_the_stack_it_priced(advisor_main):
    out = advisor_main("estimate", "--model", "7b", "--stack", "unsloth", "--method", "qlora")
    assert out.returncode == 0, out.stderr
    assert "stack=unsloth (" in out.stdout and "unsloth 2026.10.9" in out.stdout


def test_estimate_json_carries_the_stack_and_the_given_versions(advisor_main):
    out = advisor_main("estimate", "--model", "8b", "--stack", "hf-trainer", "--versions", "transformers=4.44", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["setup"]["stack"] == "hf-trainer" and data["setup"]["versions"] == "transformers=4.44"
    assert data["setup"]["loss"] == "full"  # the HF Trainer's own head was priced
    assert data["stack"]["given"] == ["transformers"]
    assert [b["id"] for b in data["stack"]["behaviours"]] == ["hf-loss-fp32-logits", "hf-default-foreach-adamw"]


def test_versions_detect_on_the_command_line(advisor_main):
    out = advisor_main("estimate", "--model", "7b", "--versions", "detect,torch=2.3", "--json")
    assert out.returncode == 0, out.stderr
    versions = parse_versions(json.loads(out.stdout)["setup"]["versions"])
    assert versions["torch"] == "2.3"
    assert versions["transformers"] == importlib.metadata.version("transformers").split("+")[0]


@pytest.mark.parametrize(
    "args, needle",
    [
        (("--stack", "deepspeed"), "unknown stack 'deepspeed'; valid: trl, hf-trainer"),
        (("--versions", "transformerz=4.4"), "unknown package 'transformerz'"),
        (("--versions", "torch=two"), "not a version number"),
    ],
)
def test_bad_stack_input_is_one_line_exit_2(advisor_main, args, needle):
    out = advisor_main("estimate", "--model", "7b", *args)
    assert out.returncode == 2
    assert needle in out.stderr and "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_help_says_scripts_keep_running_trl(advisor_main):
    out = advisor_main("estimate", "--help")
    assert "--stack" in out.stdout and "--versions" in out.stdout
    assert "generated scripts still run trl" in " ".join(out.stdout.split())


def test_stack_flags_and_detection_load_no_heavy_package():
    """--versions detect reads package metadata only: torch, transformers, peft ... stay unimported."""
    from test_import_hygiene import _loaded

    body = (
        "import contextlib, io\n"
        "from advisor.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['estimate', '--model', '8b', '--stack', 'unsloth', '--versions', 'detect']) == 0\n"
        "    assert main(['estimate', '--model', '7b', '--stack', 'torchtune', '--loss', 'chunked', '--json']) == 0\n"
    )
    assert _loaded(body) == []


def test_measuring_refuses_versions_that_are_not_installed():
    from estimators.stacks import installed_mismatch

    fake = _fake_metadata({"transformers": "5.24.0", "torch": "2.13.0+cpu"})
    assert installed_mismatch(Setup(versions="transformers=5.24,torch=2.13.0"), fake) is None
    assert "transformers 5.24.0 here" in installed_mismatch(Setup(versions="transformers=4.44"), fake)
    assert "peft is not installed" in installed_mismatch(Setup(versions="peft=0.11"), fake)
    assert installed_mismatch(Setup(versions="transformers=5.2"), fake) is not None  # 5.2 is not 5.24


def test_a_setup_checks_itself_when_built():
    """Issue 14 §5: no Setup exists that a run cannot have, so no caller has to remember a check."""
    with pytest.raises(EstimateError, match="--micro-batch must be a positive whole number"):
        Setup().with_(micro_batch=0)
    with pytest.raises(EstimateError, match="QLoRA computes in bf16 or fp16"):
        Setup(adaptation="qlora", precision="fp32")
    with pytest.raises(EstimateError, match="unknown method 'x'"):
        Setup.from_dict({"method": "x"})
