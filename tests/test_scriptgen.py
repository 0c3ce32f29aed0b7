"""advisor.scriptgen: rendered files (goldens), scripts that parse for every kind x adaptation, PRICED equal to the
plan's Setup field by field and the TRL-named blocks its translation, user strings kept as data, and the
`advisor generate` command.

Set ADVISOR_REGEN_GOLDEN=1 to rewrite tests/golden/scriptgen/ after an intended change, then review the diff.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import sys
import tomllib
import types
from importlib import resources
from pathlib import Path

import pytest
from conftest import ROOT, run_advisor

from advisor.errors import AdvisorError
from advisor.plan import Hardware, Hyper, ModelRef, Plan, Stage
from advisor.plan_priced import EstimateSummary
from advisor.planning import build_plan, plan_spec
from advisor.scriptgen import render, trl_names, write_run
from advisor.scriptgen.config_block import BUNDLED, stage_config
from advisor.scriptgen.literals import py_kwargs, py_literal
from advisor.scriptgen.pins import FALLBACK_PINS, PPO_TRL, package_versions
from estimators.lora_targets import lora_target_names
from estimators.setup import Setup

GOLDEN = Path(__file__).parent / "golden" / "scriptgen"
KINDS = ("sft", "reward", "dpo", "grpo", "ppo")
ADAPTATIONS = ("full", "lora", "qlora")
HOSTILE = "x'); __import__('os').system('touch PWNED') #\n\"\"\"\\ `$(id)` 한국어"


def make_plan(stages: list[tuple], setup: Setup, *, model: str = "tiny", hf_id: str = "tiny", gpu_count: int = 1, nodes: int = 1, **extra) -> Plan:
    """A Plan built by hand (no catalog or rule tables), so goldens change only when scriptgen does."""
    built = []
    for name, train, data_format, base_from, reward_from, dataset in stages:
        built.append(
            Stage(
                name=name,
                setup=setup.with_(train=train),
                hyper=Hyper(learning_rate=2e-4, epochs=1.0, save_steps=2),
                dataset=dataset,
                data_format=data_format,
                output_dir=f"outputs/{name}",
                base_from=base_from,
                reward_from=reward_from,
            )
        )
    return Plan(
        pipeline=extra.pop("pipeline", "+".join(s[1] for s in stages)),
        adaptation=setup.adaptation,
        model=ModelRef(key=model, name=model, hf_id=hf_id),
        hardware=Hardware(gpu="rtx4090", gpu_name="NVIDIA GeForce RTX 4090 24GB", memory_gib=23.65, count=gpu_count, nodes=nodes),
        stages=built,
        **extra,
    )


RLHF = [
    ("sft", "sft", "instruction", "", "", "bundled"),
    ("reward", "reward", "preference", "sft", "", "bundled"),
    ("ppo", "ppo", "prompt", "sft", "reward", "bundled"),
]


def golden_plans() -> dict[str, Plan]:
    return {
        "tiny-sft-lora": make_plan([("sft", "sft", "instruction", "", "", "bundled")], Setup(adaptation="lora", seq_len=512)),
        "llama-rlhf-qlora": make_plan(
            RLHF,
            Setup(adaptation="qlora", lora_targets="attention", micro_batch=2, grad_accum=8, seq_len=1024),
            model="llama-3.1-8b",
            hf_id="meta-llama/Llama-3.1-8B-Instruct",
            pipeline="rlhf",
            estimate=EstimateSummary(
                peak_allocated_gib=14.2, peak_reserved_gib=15.9, device_gib=16.4, peak_phase="backward", fits=True, headroom_gib=7.25
            ),
        ),
        "llama-dpo-full-zero3-2nodes": make_plan(
            [("dpo", "dpo", "preference", "", "", "trl-lib/ultrafeedback_binarized")],
            Setup(adaptation="full", precision="bf16-mixed", optimizer="paged_adamw8bit", gpus=4, nodes=2, parallel="zero3", offload_optimizer=True),
            model="llama-3.1-70b",
            hf_id="meta-llama/Llama-3.1-70B-Instruct",
            gpu_count=4,
            nodes=2,
        ),
    }


BLOCKS = ("CONFIG", "TRAINING", "MODEL", "LORA", "QUANT", "PRICED")


def _literal(node: ast.expr):
    """A block's value: a literal, or `dict(name=literal, ...)` as the keyword blocks are written."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        return {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
    return ast.literal_eval(node)


def blocks_of(script: str) -> dict:
    """The data blocks of a rendered script (CONFIG, TRAINING, MODEL, LORA, QUANT, PRICED), read with ast (no code runs)."""
    found = {}
    for node in ast.parse(script).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) and node.targets[0].id in BLOCKS:
            found[node.targets[0].id] = _literal(node.value)
    assert set(found) == set(BLOCKS), f"blocks found: {sorted(found)}"
    return found


def config_of(script: str) -> dict:
    """The CONFIG literal of a rendered script."""
    return blocks_of(script)["CONFIG"]


# --------------------------------------------------------------------------------------------- goldens


@pytest.mark.parametrize("case", sorted(golden_plans()))
def test_rendered_files_match_goldens(case):
    files = render(golden_plans()[case], versions=FALLBACK_PINS)
    for name in BUNDLED.values():  # copies of advisor/data/, compared with it instead of stored twice
        if f"data/{name}" in files:
            assert files.pop(f"data/{name}") == (resources.files("advisor") / "data" / name).read_text(encoding="utf-8")
    root = GOLDEN / case
    if os.environ.get("ADVISOR_REGEN_GOLDEN"):
        if root.exists():
            for old in sorted(root.rglob("*"), reverse=True):
                old.unlink() if old.is_file() else old.rmdir()
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text, encoding="utf-8")
    on_disk = {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8") for p in root.rglob("*") if p.is_file()}
    assert sorted(on_disk) == sorted(files), "file list differs (ADVISOR_REGEN_GOLDEN=1 rewrites the goldens)"
    for rel, text in files.items():
        assert text == on_disk[rel], f"{case}/{rel} differs from its golden (ADVISOR_REGEN_GOLDEN=1 rewrites it)"


def test_render_is_deterministic():
    plan = golden_plans()["llama-rlhf-qlora"]
    assert render(plan, versions=FALLBACK_PINS) == render(plan, versions=FALLBACK_PINS)


# --------------------------------------------------------------------------------------------- every kind x adaptation


def _kind_plan(kind: str, adaptation: str) -> Plan:
    setup = Setup(adaptation=adaptation, micro_batch=3, grad_accum=5, seq_len=777, lora_r=8, lora_alpha=24, lora_dropout=0.1, lora_targets="qv")
    if kind == "ppo":
        return make_plan(RLHF, setup)
    fmt = {"sft": "instruction", "reward": "preference", "dpo": "preference", "grpo": "prompt"}[kind]
    return make_plan([(kind, kind, fmt, "", "", "bundled")], setup)


@pytest.mark.parametrize("adaptation", ADAPTATIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_every_script_parses_and_has_the_shape_of_trl_scripts(kind, adaptation):
    files = render(_kind_plan(kind, adaptation))
    scripts = {rel: text for rel, text in files.items() if rel.startswith("train_")}
    expected = {"train_sft.py", "train_reward.py", "train_ppo.py", "train_ppo_rloo.py"} if kind == "ppo" else {f"train_{kind}.py"}
    assert set(scripts) == expected
    common = ast.parse(files["common.py"], filename="common.py")
    shared = {node.name for node in common.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    assert {"parse_args", "apply_overrides", "for_device", "start", "load_data", "load_model", "Progress", "run_guarded", "fit"} <= shared
    assert "@@" not in files["common.py"]
    for rel, text in scripts.items():
        tree = ast.parse(text, filename=rel)
        assert re.match(
            r"# /// script\n# requires-python = \">=3.11\"\n# dependencies = \[\n(#     \"[a-z]+==[0-9.]+\",\n)+# \]\n(# \[tool\.advisor\]\n# exact = \[\"trl\"\].*\n)?# ///\n",
            text,
        ), rel
        docstring = ast.get_docstring(tree)
        assert f"python {rel}" in docstring and "--resume" in docstring and "common.py" in docstring
        names = [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
        assert names[0] == "main"  # the kind-specific part comes first, after the data blocks
        imported = [node for node in tree.body if isinstance(node, ast.ImportFrom) and node.module == "common"]
        assert len(imported) == 1 and {alias.name for alias in imported[0].names} <= shared
        guard = tree.body[-1]
        assert isinstance(guard, ast.If) and ast.unparse(guard.test) == "__name__ == '__main__'"
        assert "@@" not in text
        deps = re.findall(r'#     "([a-z]+)==([0-9.]+)"', text)
        pins = dict(deps)
        assert pins["trl"] == (PPO_TRL if rel == "train_ppo.py" else package_versions()["trl"])
        assert ("bitsandbytes" in pins) == (adaptation == "qlora")
        assert "trust_remote_code=True" not in text


@pytest.mark.parametrize("adaptation", ADAPTATIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_priced_equals_the_plan_setup_and_the_blocks_its_translation(kind, adaptation):
    plan = _kind_plan(kind, adaptation)
    files = render(plan)
    for stage in plan.stages:
        setup = stage.setup
        blocks = blocks_of(files[f"train_{stage.name}.py"])
        config, training, priced = blocks["CONFIG"], blocks["TRAINING"], blocks["PRICED"]
        assert set(priced) == set(setup.to_dict())
        for field, value in setup.to_dict().items():
            want = setup.checkpointing if field == "grad_ckpt" else value
            assert priced[field] == want, field
        hyper = stage.hyper.to_data()
        assert training == trl_names.training(setup, hyper, setup.train)
        assert (training["per_device_train_batch_size"], training["gradient_accumulation_steps"]) == (setup.micro_batch, setup.grad_accum) == (3, 5)
        assert (training["learning_rate"], training["num_train_epochs"], training["save_steps"]) == (
            hyper["learning_rate"],
            hyper["epochs"],
            hyper["save_steps"],
        )
        assert training["activation_checkpointing"] == setup.checkpointing
        if setup.train in ("sft", "reward", "dpo"):
            assert training["max_length"] == setup.seq_len == 777 and "max_length" not in config
        else:
            assert config["max_length"] == setup.seq_len == 777 and "max_length" not in training
        assert blocks["MODEL"] == {"dtype": "bfloat16", "attn_implementation": "sdpa", "trust_remote_code": False}
        if adaptation == "full":
            assert blocks["LORA"] is None
        else:
            task = "SEQ_CLS" if setup.train == "reward" else "CAUSAL_LM"
            assert blocks["LORA"] == {
                "r": 8,
                "lora_alpha": 24,
                "lora_dropout": 0.1,
                "target_modules": list(lora_target_names(plan_spec(plan), setup)),
                "task_type": task,
            }
            assert blocks["LORA"]["target_modules"] == ["q_proj", "v_proj"]
        if adaptation == "qlora":
            assert blocks["QUANT"] == {
                "load_in_4bit": True,
                "bnb_4bit_quant_type": setup.quant_type,
                "bnb_4bit_use_double_quant": setup.double_quant,
                "bnb_4bit_compute_dtype": "bfloat16",
            }
            assert config["kbit_upcast"] == setup.kbit_upcast and config["kbit_device_map"] is True
        else:
            assert blocks["QUANT"] is None and "kbit_upcast" not in config
        assert config["train"] == setup.train and config["stage"] == stage.name
        assert config["data_format"] == stage.data_format and config["output_dir"] == stage.output_dir
        assert config["model"] == "tiny"
        assert config["base_from"] == (f"outputs/{stage.base_from}" if stage.base_from else "")
        assert config.get("reward_model", "") == (f"outputs/{stage.reward_from}" if stage.reward_from else "")
        assert config["save_merged"] == any(s.base_from == stage.name or s.reward_from == stage.name for s in plan.stages)


def _load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sft_module(tmp_path_factory):
    """One generated script imported as a module (torch and trl load once), with its common.py: the functions
    that turn the blocks into the arguments the trainers and from_pretrained get on this device."""
    out = tmp_path_factory.mktemp("module")
    write_run(make_plan([("sft", "sft", "instruction", "", "", "bundled")], Setup()), out)
    stage = _load_module(out / "train_sft.py", "generated_train_sft")
    common = sys.modules[stage.start.__module__]  # imported by the script itself, from its folder
    return types.SimpleNamespace(**{**vars(common), **vars(stage)})


SETUPS = [
    Setup(adaptation="full", precision="bf16", optimizer="adamw", micro_batch=2, grad_accum=4, seq_len=4096, attention="flash"),
    Setup(adaptation="full", precision="fp16", optimizer="sgd_momentum", grad_ckpt=True, attention="eager"),
    Setup(adaptation="full", precision="bf16-mixed", optimizer="adafactor", grad_ckpt=False),
    Setup(adaptation="full", precision="fp16-mixed", optimizer="lion"),
    Setup(adaptation="full", precision="fp32", optimizer="sgd"),
    Setup(adaptation="lora", precision="fp16", optimizer="adamw8bit", lora_targets="attention", lora_r=4, lora_alpha=8, lora_dropout=0.0),
    Setup(adaptation="lora", precision="bf16", optimizer="adamw"),
    Setup(adaptation="qlora", precision="bf16", optimizer="paged_adamw8bit", quant_type="fp4", double_quant=False, kbit_upcast=False),
    Setup(adaptation="qlora", precision="fp16", quant_type="nf4", parallel="fsdp", gpus=2),
]


def _runtime_precision(precision: str, cuda: bool, bf16_ok: bool) -> str:
    """The plan's precision where the device allows it: fp16 on GPUs without bf16, fp32 on a CPU (a smoke test)."""
    if not cuda:
        return "fp32"
    return precision.replace("bf16", "fp16") if precision.startswith("bf16") and not bf16_ok else precision


@pytest.mark.parametrize("setup", SETUPS, ids=lambda s: f"{s.adaptation}-{s.precision}-{s.optimizer}")
def test_script_functions_turn_the_setup_into_trainer_arguments(sft_module, setup):
    import torch

    m = sft_module
    plan = make_plan([("sft", "sft", "instruction", "", "", "bundled")], setup)
    stage = plan.stages[0]
    cfg = stage_config(plan, stage)
    training = trl_names.training(stage.setup, stage.hyper.to_data(), "sft")
    model, lora, quant = trl_names.model(stage.setup, False), trl_names.lora(stage.setup, "sft", plan_spec(plan)), trl_names.quant(stage.setup)
    dtypes = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
    weights = {"bf16": "bfloat16", "fp16": "float16"}

    for cuda, bf16_ok in ((True, True), (True, False), (False, False)):
        precision = _runtime_precision(setup.precision, cuda, bf16_ok)
        kw, mk, qk = m.for_device(training, model, quant, lora is None, cuda, bf16_ok)
        assert kw["per_device_train_batch_size"] == setup.micro_batch
        assert kw["gradient_accumulation_steps"] == setup.grad_accum
        assert kw["activation_checkpointing"] == setup.checkpointing
        assert kw["use_cpu"] is (not cuda)
        optim = {
            "adamw": "adamw_torch_fused",
            "adamw8bit": "adamw_bnb_8bit",
            "paged_adamw8bit": "paged_adamw_8bit",
            "adafactor": "adafactor",
            "sgd": "sgd",
            "sgd_momentum": "sgd",
            "lion": "lion_32bit",
        }
        assert kw["optim"] == ("adamw_torch" if not cuda and setup.optimizer == "adamw" else optim[setup.optimizer])
        assert kw.get("optim_args") == ("momentum=0.9" if setup.optimizer == "sgd_momentum" else None)
        # Pure fp16 full fine-tuning gets no GradScaler (it cannot unscale fp16 gradients).
        assert kw["bf16"] == (precision in ("bf16", "bf16-mixed"))
        assert kw["fp16"] == (precision == "fp16-mixed" or (precision == "fp16" and setup.adaptation != "full"))
        compute = torch.bfloat16 if precision.startswith("bf16") else torch.float16 if precision.startswith("fp16") else torch.float32
        assert m.device_dtype(trl_names.compute_dtype(setup), cuda, bf16_ok) == compute

        run = m.Run(here=m.HERE, args=None, config=cfg, training=kw, model=mk, quant=qk, lora=None, compute_dtype=compute, cuda=cuda, progress=None)
        mkw = m.model_kwargs(run)
        assert mkw["attn_implementation"] == {"sdpa": "sdpa", "flash": "flash_attention_2", "eager": "eager"}[setup.attention]
        assert mkw["trust_remote_code"] is False
        if setup.adaptation == "qlora":
            q = mkw["quantization_config"]
            assert (q.load_in_4bit, q.bnb_4bit_quant_type, q.bnb_4bit_use_double_quant, q.bnb_4bit_compute_dtype) == (
                True,
                setup.quant_type,
                setup.double_quant,
                compute,
            )
            assert mkw["dtype"] == compute
            if setup.parallel.startswith("fsdp"):
                assert q.bnb_4bit_quant_storage == compute and "device_map" not in mkw  # FSDP places the shards
            else:
                assert mkw.get("device_map") == ({"": 0} if cuda else None)
        else:
            assert "quantization_config" not in mkw
            assert mkw["dtype"] == dtypes[weights.get(precision, "float32")]

    if setup.adaptation == "full":
        assert lora is None
    else:
        targets = list(lora_target_names(plan_spec(plan), setup)) or "all-linear"
        assert lora == {
            "r": setup.lora_r,
            "lora_alpha": setup.lora_alpha,
            "lora_dropout": setup.lora_dropout,
            "target_modules": targets,
            "task_type": "CAUSAL_LM",
        }
    # The real TRL config accepts every argument (on this CPU-only machine).
    cpu, _, _ = m.for_device(training, model, quant, lora is None, False, False)
    sft_config = m.SFTConfig(**cpu, output_dir="/tmp/unused")
    assert sft_config.max_length == setup.seq_len and sft_config.packing == setup.packed
    assert sft_config.gradient_checkpointing == setup.checkpointing
    assert sft_config.per_device_train_batch_size == setup.micro_batch


def test_script_resolves_paths_and_applies_flag_overrides(sft_module, tmp_path, monkeypatch):
    m = sft_module
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.jsonl").write_text("{}\n")
    args = m.parse_args(
        "sft",
        "",
        [
            "--dataset",
            "mine.jsonl",
            "--output-dir",
            "out",
            "--max-steps",
            "7",
            "--batch-size",
            "3",
            "--learning-rate",
            "0.5",
            "--seq-len",
            "99",
            "--epochs",
            "2",
            "--save-steps",
            "4",
        ],
    )
    cfg, training = m.apply_overrides(m.CONFIG, m.TRAINING, args, m.HERE)
    assert cfg["dataset"] == str(tmp_path / "mine.jsonl") and cfg["output_dir"] == str(tmp_path / "out")
    assert (training["max_steps"], training["per_device_train_batch_size"], training["learning_rate"], training["max_length"]) == (7, 3, 0.5, 99)
    assert (training["num_train_epochs"], training["save_steps"]) == (2, 4)
    assert m.TRAINING["max_steps"] == -1  # TRAINING itself untouched
    plain, _ = m.apply_overrides(m.CONFIG, m.TRAINING, m.parse_args("sft", "", []), m.HERE)
    assert plain["dataset"] == str(m.HERE / "data" / "instructions.jsonl")  # relative to the script's folder
    assert plain["output_dir"] == str(m.HERE / "outputs" / "sft")
    hub, _ = m.apply_overrides(m.CONFIG, m.TRAINING, m.parse_args("sft", "", ["--dataset", "org/name", "--model", "org/model"]), m.HERE)
    assert hub["dataset"] == "org/name" and hub["model"] == "org/model"


# --------------------------------------------------------------------------------------------- user strings stay data


def test_trust_remote_code_only_when_the_plan_says_so():
    plan = make_plan(RLHF, Setup(), trust_remote_code=True)
    assert blocks_of(render(plan)["train_sft.py"])["MODEL"]["trust_remote_code"] is True
    plan.trust_remote_code = False
    files = render(plan)
    for rel in ("train_sft.py", "train_reward.py", "train_ppo.py", "train_ppo_rloo.py"):
        assert blocks_of(files[rel])["MODEL"]["trust_remote_code"] is False
        # the MODEL block's value, and otherwise only what the script reads from it
        assert set(re.findall(r"trust_remote_code=([^,)\n]+)", files[rel])) <= {"False", 'run.model["trust_remote_code"]'}
    used = re.findall(r"trust_remote_code=([^,)\n]+)", files["common.py"])
    assert used and set(used) == {'run.model["trust_remote_code"]'}


def test_hostile_strings_stay_data():
    plan = make_plan(
        [("sft", "sft", "instruction", "", "", HOSTILE), ("dpo", "dpo", "preference", "sft", "", HOSTILE)],
        Setup(adaptation="lora", lora_targets="q_proj,v_proj"),
        model=HOSTILE,
        hf_id=HOSTILE,
        trust_remote_code=False,
    )
    plan.stages[0].output_dir = HOSTILE
    files = render(plan)
    for rel in ("train_sft.py", "train_dpo.py"):
        text = files[rel]
        tree = ast.parse(text)
        config = config_of(text)
        assert config["model"] == HOSTILE and config["dataset"] == HOSTILE
        assert (config["output_dir"] if rel == "train_sft.py" else config["base_from"]) == HOSTILE
        # the hostile text appears only inside string constants
        strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        assert HOSTILE in strings
        assert "__import__" not in ast.unparse(tree).replace(repr(HOSTILE), "")
        assert ast.get_docstring(tree).count("PWNED") == 0
    readme = files["README.md"]
    assert '\n"""' not in readme and json.dumps(HOSTILE, ensure_ascii=False).replace("`", "\\u0060") in readme
    assert Plan.from_data(tomllib.loads(files["plan.toml"])).model.hf_id == HOSTILE


@pytest.mark.parametrize("name", ["../evil", "a/b", "x y", "", "ok\nbad", "ü"])
def test_stage_names_that_cannot_name_a_file_are_refused(name):
    plan = make_plan([("sft", "sft", "instruction", "", "", "bundled")], Setup())
    plan.stages[0].name = name
    with pytest.raises(AdvisorError, match="stage name"):
        render(plan)


def test_py_literal_round_trips_and_refuses_non_literals():
    value = {"a": [1, 2.5, None, True], "b": {"c": HOSTILE}, "d": []}
    assert ast.literal_eval(py_literal(value)) == value
    with pytest.raises(TypeError):
        py_literal({"x": object()})
    with pytest.raises(ValueError):
        py_literal({"x": float("nan")})
    kwargs = {"target_modules": ["q_proj", HOSTILE], "r": 8, "bf16": True}
    assert _literal(ast.parse(py_kwargs(kwargs), mode="eval").body) == kwargs and py_kwargs(None) == "None"
    with pytest.raises(TypeError):
        py_kwargs({"not a name": 1})


# --------------------------------------------------------------------------------------------- run folder


def test_existing_folder_is_not_overwritten_without_force(tmp_path):
    plan = make_plan([("sft", "sft", "instruction", "", "", "bundled")], Setup())
    out = tmp_path / "run"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(AdvisorError, match="--force") as err:
        write_run(plan, out)
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    written = write_run(plan, out, force=True)
    assert (out / "train_sft.py").is_file() and (out / "mine.txt").read_text() == "keep"
    assert {p.relative_to(out).as_posix() for p in written} == set(render(plan))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert write_run(plan, empty)  # an empty folder is fine


def test_run_folder_contents(tmp_path):
    plan = golden_plans()["llama-rlhf-qlora"]
    files = render(plan)
    assert {
        "plan.toml",
        "README.md",
        "accelerate_config.yaml",
        "data/sample_instruction.jsonl",
        "data/sample_preference.jsonl",
        "data/sample_prompt.jsonl",
    } <= set(files)
    assert Plan.from_data(tomllib.loads(files["plan.toml"])) == plan
    for fmt, columns in (("instruction", {"messages"}), ("preference", {"prompt", "chosen", "rejected"}), ("prompt", {"prompt"})):
        rows = [json.loads(line) for line in files[f"data/sample_{fmt}.jsonl"].splitlines()]
        assert len(rows) >= 3 and all(set(row) == columns for row in rows)
        assert any(re.search("[\uac00-\ud7a3]", json.dumps(row, ensure_ascii=False)) for row in rows)
    assert [rel for rel in files if rel.endswith(".py") and not rel.startswith("train_")] == ["common.py"]
    readme = files["README.md"]
    assert "- `common.py`:" in readme
    order = [readme.index(f"python train_{name}.py") for name in ("sft", "reward", "ppo")]
    assert order == sorted(order)
    assert "14.2 GiB" in readme and "If it runs out of memory" in readme
    assert f"trl=={PPO_TRL}" in readme and "train_ppo_rloo.py" in readme


def test_bundled_data_has_english_and_korean_rows_in_trl_formats():
    data = resources.files("advisor") / "data"
    expected = {
        "instructions.jsonl": (35, {"messages"}),
        "preferences.jsonl": (25, {"prompt", "chosen", "rejected"}),
        "prompts.jsonl": (25, {"prompt"}),
    }
    for name, (at_least, columns) in expected.items():
        rows = [json.loads(line) for line in (data / name).read_text(encoding="utf-8").splitlines()]
        assert len(rows) >= at_least and all(set(row) == columns for row in rows), name
        korean = [row for row in rows if re.search("[\uac00-\ud7a3]", json.dumps(row, ensure_ascii=False))]
        assert 0.3 < len(korean) / len(rows) < 0.7, name
        for row in rows:
            for value in row.values():
                assert isinstance(value, list) and all(set(turn) == {"role", "content"} and turn["content"].strip() for turn in value)


LAYOUTS = [
    (Setup(), "NO", None),
    (Setup(gpus=4, parallel="ddp"), "MULTI_GPU", None),
    (Setup(gpus=8, parallel="fsdp"), "FSDP", ("fsdp_sharding_strategy", "FULL_SHARD")),
    (Setup(gpus=8, parallel="fsdp_grad_op"), "FSDP", ("fsdp_sharding_strategy", "SHARD_GRAD_OP")),
    (Setup(gpus=8, nodes=2, parallel="fsdp_hybrid", offload_params=True), "FSDP", ("fsdp_offload_params", True)),
    (Setup(gpus=2, parallel="zero1"), "DEEPSPEED", ("zero_stage", 1)),
    (Setup(gpus=2, parallel="zero2", offload_optimizer=True), "DEEPSPEED", ("offload_optimizer_device", "cpu")),
    (Setup(gpus=8, nodes=4, parallel="zero3", offload_params=True), "DEEPSPEED", ("offload_param_device", "cpu")),
]


@pytest.mark.parametrize("setup,distributed,key", LAYOUTS, ids=lambda x: getattr(x, "parallel", None) if isinstance(x, Setup) else None)
def test_accelerate_config_for_each_layout(setup, distributed, key, tmp_path):
    import yaml
    from accelerate.commands.config.config_args import load_config_from_file

    plan = make_plan([("sft", "sft", "instruction", "", "", "bundled")], setup, gpu_count=setup.gpus, nodes=setup.nodes)
    text = render(plan)["accelerate_config.yaml"]
    data = yaml.safe_load(text)
    assert data["distributed_type"] == distributed
    assert data["num_processes"] == setup.world_size and data["num_machines"] == setup.nodes
    assert data["mixed_precision"] == "bf16"
    if key:
        section = data.get("fsdp_config") or data.get("deepspeed_config")
        assert section[key[0]] == key[1]
    if setup.nodes > 1:
        assert data["main_process_ip"] == "FILL_IN" and "FILL_IN" in text.split("machine_rank:")[1].splitlines()[0]
        assert "main_process_port" in data
    else:
        assert "main_process_ip" not in data
        path = tmp_path / "accelerate_config.yaml"
        path.write_text(text)
        loaded = load_config_from_file(str(path))  # accelerate itself reads it
        assert loaded.num_processes == setup.world_size


def test_fallback_pins_equal_pyproject_train_extra():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = dict(re.fullmatch(r"([a-z-]+)==([0-9.]+)", dep).groups() for dep in pyproject["project"]["optional-dependencies"]["train"])
    assert pins == FALLBACK_PINS


# --------------------------------------------------------------------------------------------- the command


def test_generate_command_writes_a_run_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "run"
    r = run_advisor(
        "generate",
        "--model",
        "tiny",
        "--method-kind",
        "rlhf",
        "--method",
        "qlora",
        "--seq-len",
        "256",
        "--response-len",
        "64",
        "--out",
        str(out),
        "--json",
    )
    assert r.returncode == 0, r.stderr
    written = json.loads(r.stdout)
    assert {Path(p).name for p in written} >= {
        "common.py",
        "train_sft.py",
        "train_reward.py",
        "train_ppo.py",
        "train_ppo_rloo.py",
        "README.md",
        "plan.toml",
    }
    blocks = blocks_of((out / "train_reward.py").read_text())
    assert blocks["PRICED"]["adaptation"] == "qlora" and blocks["PRICED"]["seq_len"] == 256 and blocks["CONFIG"]["base_from"] == "outputs/sft"
    assert blocks["TRAINING"]["max_length"] == 256 and blocks["QUANT"]["load_in_4bit"] is True
    again = run_advisor("generate", "--model", "tiny", "--out", str(out))
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "--force" in again.stderr
    forced = run_advisor("generate", "--plan", str(out / "plan.toml"), "--out", str(out), "--force")
    assert forced.returncode == 0, forced.stderr


def test_generate_command_input_errors(tmp_path):
    r = run_advisor("generate", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "--model" in r.stderr
    (tmp_path / "plan.toml").write_text(make_plan([("sft", "sft", "instruction", "", "", "bundled")], Setup()).to_toml())
    r = run_advisor("generate", "--plan", str(tmp_path / "plan.toml"), "--method", "full", "--out", str(tmp_path / "y"))
    assert r.returncode == 2 and "--method" in r.stderr


def test_generate_default_out_and_local_dataset_made_absolute(tmp_path):
    data = tmp_path / "chats.jsonl"
    data.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n')
    r = run_advisor("generate", "--model", "tiny", "--dataset", "chats.jsonl", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    script = tmp_path / "runs" / "tiny-sft" / "train_sft.py"
    assert config_of(script.read_text())["dataset"] == str(data)


def test_generate_does_not_import_the_training_stack(tmp_path):
    code = (
        "import sys, contextlib, io\n"
        "from advisor.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['generate', '--model', 'tiny', '--method-kind', 'rlhf', '--out', {str(tmp_path / 'r')!r}]) == 0\n"
        "print(sorted(m for m in ('torch', 'transformers', 'trl', 'peft', 'datasets', 'accelerate') if m in sys.modules))\n"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_plans_turn_lora_dropout_off_where_peft_wraps_fused_experts():
    """peft's lora.ParamWrapper (Mixtral's fused experts under "all-linear") raises on lora_dropout != 0, so the
    plan, and the script generated from it, must carry 0 there and keep the user's dropout elsewhere."""
    mixtral = build_plan("mixtral-8x7b", Setup(adaptation="lora", lora_targets="all-linear"), gpu="h100")
    assert mixtral.stages[0].setup.lora_dropout == 0.0
    assert blocks_of(render(mixtral)["train_sft.py"])["LORA"]["lora_dropout"] == 0.0
    attention = build_plan("mixtral-8x7b", Setup(adaptation="lora", lora_targets="attention"), gpu="h100")
    assert attention.stages[0].setup.lora_dropout == 0.05
    dense = build_plan("8b", Setup(adaptation="lora", lora_targets="all-linear"), gpu="h100")
    assert dense.stages[0].setup.lora_dropout == 0.05
