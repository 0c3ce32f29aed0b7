"""advisor.scriptgen: rendered files (goldens), scripts that parse for every kind x adaptation, CONFIG equal to the
plan's Setup field by field, user strings kept as data, and the `advisor generate` command.

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
from importlib import resources
from pathlib import Path

import pytest

from advisor.errors import AdvisorError
from advisor.plan import EstimateSummary, Hardware, Hyper, ModelRef, Plan, Stage
from advisor.planning import build_plan
from advisor.scriptgen import BUNDLED, FALLBACK_PINS, PPO_TRL, package_versions, py_literal, render, stage_config, write_run
from estimators.setup import Setup, lora_target_names

from conftest import ROOT, run_advisor

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
        method=extra.pop("method", "+".join(s[1] for s in stages)),
        adaptation=setup.method,
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
        "tiny-sft-lora": make_plan([("sft", "sft", "instruction", "", "", "bundled")], Setup(method="lora", seq_len=512)),
        "llama-rlhf-qlora": make_plan(
            RLHF,
            Setup(method="qlora", lora_targets="attention", micro_batch=2, grad_accum=8, seq_len=1024),
            model="llama-3.1-8b",
            hf_id="meta-llama/Llama-3.1-8B-Instruct",
            method="rlhf",
            estimate=EstimateSummary(peak_allocated_gib=14.2, peak_reserved_gib=15.9, device_gib=16.4, peak_phase="backward", fits=True, headroom_gib=7.25),
        ),
        "llama-dpo-full-zero3-2nodes": make_plan(
            [("dpo", "dpo", "preference", "", "", "trl-lib/ultrafeedback_binarized")],
            Setup(method="full", precision="bf16-mixed", optimizer="paged_adamw8bit", gpus=4, nodes=2, parallel="zero3", offload_optimizer=True),
            model="llama-3.1-70b",
            hf_id="meta-llama/Llama-3.1-70B-Instruct",
            gpu_count=4,
            nodes=2,
        ),
    }


def config_of(script: str) -> dict:
    """The CONFIG literal of a rendered script, read with ast (no code runs)."""
    for node in ast.parse(script).body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["CONFIG"]:
            return ast.literal_eval(node.value)
    raise AssertionError("no CONFIG assignment")


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


def _kind_plan(kind: str, method: str) -> Plan:
    setup = Setup(method=method, micro_batch=3, grad_accum=5, seq_len=777, lora_r=8, lora_alpha=24, lora_dropout=0.1, lora_targets="qv")
    if kind == "ppo":
        return make_plan(RLHF, setup)
    fmt = {"sft": "instruction", "reward": "preference", "dpo": "preference", "grpo": "prompt"}[kind]
    return make_plan([(kind, kind, fmt, "", "", "bundled")], setup)


@pytest.mark.parametrize("method", ADAPTATIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_every_script_parses_and_has_the_shape_of_trl_scripts(kind, method):
    files = render(_kind_plan(kind, method))
    scripts = {rel: text for rel, text in files.items() if rel.endswith(".py")}
    expected = {"train_sft.py", "train_reward.py", "train_ppo.py", "train_ppo_rloo.py"} if kind == "ppo" else {f"train_{kind}.py"}
    assert set(scripts) == expected
    for rel, text in scripts.items():
        tree = ast.parse(text, filename=rel)
        assert re.match(r"# /// script\n# requires-python = \">=3.11\"\n# dependencies = \[\n(#     \"[a-z]+==[0-9.]+\",\n)+# \]\n(# \[tool\.advisor\]\n# exact = \[\"trl\"\].*\n)?# ///\n", text), rel
        docstring = ast.get_docstring(tree)
        assert f"python {rel}" in docstring and "--resume" in docstring
        names = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
        assert {"main", "parse_args", "load_data", "load_model", "Progress", "training_kwargs"} <= names
        guard = tree.body[-1]
        assert isinstance(guard, ast.If) and ast.unparse(guard.test) == "__name__ == '__main__'"
        assert "@@" not in text
        deps = re.findall(r'#     "([a-z]+)==([0-9.]+)"', text)
        pins = dict(deps)
        assert pins["trl"] == (PPO_TRL if rel == "train_ppo.py" else package_versions()["trl"])
        assert ("bitsandbytes" in pins) == (method == "qlora")
        assert "trust_remote_code=True" not in text


@pytest.mark.parametrize("method", ADAPTATIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_config_equals_the_plan_setup_field_by_field(kind, method):
    plan = _kind_plan(kind, method)
    files = render(plan)
    for stage in plan.stages:
        setup = stage.setup
        config = config_of(files[f"train_{stage.name}.py"])
        assert set(config["setup"]) == set(setup.to_dict())
        for field, value in setup.to_dict().items():
            want = setup.checkpointing if field == "grad_ckpt" else value
            assert config["setup"][field] == want, field
        assert config["hyper"] == stage.hyper.model_dump(mode="json")
        assert config["train"] == setup.train and config["stage"] == stage.name
        assert config["lora_target_modules"] == list(lora_target_names(setup)) == ["q_proj", "v_proj"]
        assert config["data_format"] == stage.data_format and config["output_dir"] == stage.output_dir
        assert config["model"] == "tiny" and config["trust_remote_code"] is False
        assert config["base_from"] == (f"outputs/{stage.base_from}" if stage.base_from else "")
        assert config["reward_model"] == (f"outputs/{stage.reward_from}" if stage.reward_from else "")
        assert config["save_merged"] == any(s.base_from == stage.name or s.reward_from == stage.name for s in plan.stages)


def _load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sft_module(tmp_path_factory):
    """One generated script imported as a module (torch and trl load once): its functions map CONFIG to the
    arguments the trainers and from_pretrained get."""
    out = tmp_path_factory.mktemp("module")
    write_run(make_plan([("sft", "sft", "instruction", "", "", "bundled")], Setup()), out)
    return _load_module(out / "train_sft.py", "generated_train_sft")


SETUPS = [
    Setup(method="full", precision="bf16", optimizer="adamw", micro_batch=2, grad_accum=4, seq_len=4096, attention="flash"),
    Setup(method="full", precision="fp16", optimizer="sgd_momentum", grad_ckpt=True, attention="eager"),
    Setup(method="full", precision="bf16-mixed", optimizer="adafactor", grad_ckpt=False),
    Setup(method="full", precision="fp16-mixed", optimizer="lion"),
    Setup(method="full", precision="fp32", optimizer="sgd"),
    Setup(method="lora", precision="fp16", optimizer="adamw8bit", lora_targets="attention", lora_r=4, lora_alpha=8, lora_dropout=0.0),
    Setup(method="qlora", precision="bf16", optimizer="paged_adamw8bit", quant_type="fp4", double_quant=False, kbit_upcast=False),
    Setup(method="qlora", precision="fp16", quant_type="nf4", parallel="fsdp", gpus=2),
]


@pytest.mark.parametrize("setup", SETUPS, ids=lambda s: f"{s.method}-{s.precision}-{s.optimizer}")
def test_script_functions_turn_the_setup_into_trainer_arguments(sft_module, setup):
    import torch

    m = sft_module
    plan = make_plan([("sft", "sft", "instruction", "", "", "bundled")], setup)
    cfg = stage_config(plan, plan.stages[0])
    cfg["output_dir"] = "/tmp/unused"
    bf16_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "bf16-mixed": torch.float32, "fp16-mixed": torch.float32, "fp32": torch.float32}

    kw = m.training_kwargs(cfg, cuda=True, bf16_ok=True)
    assert kw["per_device_train_batch_size"] == setup.micro_batch
    assert kw["gradient_accumulation_steps"] == setup.grad_accum
    assert kw["activation_checkpointing"] == setup.checkpointing
    assert kw["use_cpu"] is False
    optim = {"adamw": "adamw_torch_fused", "adamw8bit": "adamw_bnb_8bit", "paged_adamw8bit": "paged_adamw_8bit", "adafactor": "adafactor", "sgd": "sgd", "sgd_momentum": "sgd", "lion": "lion_32bit"}
    assert kw["optim"] == optim[setup.optimizer]
    assert kw.get("optim_args") == ("momentum=0.9" if setup.optimizer == "sgd_momentum" else None)
    assert kw["bf16"] == setup.precision.startswith("bf16")
    assert kw["fp16"] == (setup.precision == "fp16-mixed" or (setup.precision == "fp16" and setup.method != "full"))

    mk = m.model_kwargs(cfg, cuda=True, bf16_ok=True)
    assert mk["attn_implementation"] == {"sdpa": "sdpa", "flash": "flash_attention_2", "eager": "eager"}[setup.attention]
    assert mk["trust_remote_code"] is False
    if setup.method == "qlora":
        compute = torch.bfloat16 if setup.precision.startswith("bf16") else torch.float16
        q = mk["quantization_config"]
        assert (q.load_in_4bit, q.bnb_4bit_quant_type, q.bnb_4bit_use_double_quant, q.bnb_4bit_compute_dtype) == (True, setup.quant_type, setup.double_quant, compute)
        assert mk["dtype"] == compute
        if setup.parallel.startswith("fsdp"):
            assert q.bnb_4bit_quant_storage == compute and "device_map" not in mk  # FSDP places the shards
        else:
            assert mk["device_map"] == {"": 0}
    else:
        assert "quantization_config" not in mk
        assert mk["dtype"] == bf16_dtype[setup.precision]

    if setup.method == "full":
        assert m.lora_config(cfg, "CAUSAL_LM") is None
    else:
        lk = m.lora_kwargs(cfg, "CAUSAL_LM")
        targets = list(lora_target_names(setup)) or "all-linear"
        assert lk == {"r": setup.lora_r, "lora_alpha": setup.lora_alpha, "lora_dropout": setup.lora_dropout, "target_modules": targets, "task_type": "CAUSAL_LM"}

    # Without bf16 on the GPU, bf16 becomes fp16; on a CPU everything runs in fp32 with the plain AdamW.
    assert m.runtime_precision({"precision": "bf16", "method": setup.method}, True, False) == "fp16"
    assert m.runtime_precision({"precision": "bf16-mixed", "method": setup.method}, True, False) == "fp16-mixed"
    cpu = m.training_kwargs(cfg, cuda=False, bf16_ok=False)
    assert cpu["use_cpu"] is True and cpu["bf16"] is False and cpu["fp16"] is False
    if setup.optimizer == "adamw":
        assert cpu["optim"] == "adamw_torch"
    # The real TRL config accepts every argument (on this CPU-only machine).
    sft_config = m.trainer_config(cfg, cuda=False, bf16_ok=False)
    assert sft_config.max_length == setup.seq_len and sft_config.packing == setup.packed
    assert sft_config.gradient_checkpointing == setup.checkpointing
    assert sft_config.per_device_train_batch_size == setup.micro_batch


def test_script_resolves_paths_and_applies_flag_overrides(sft_module, tmp_path, monkeypatch):
    m = sft_module
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.jsonl").write_text("{}\n")
    args = m.parse_args(["--dataset", "mine.jsonl", "--output-dir", "out", "--max-steps", "7", "--batch-size", "3", "--learning-rate", "0.5", "--seq-len", "99", "--epochs", "2", "--save-steps", "4"])
    cfg = m.apply_overrides(m.CONFIG, args)
    assert cfg["dataset"] == str(tmp_path / "mine.jsonl") and cfg["output_dir"] == str(tmp_path / "out")
    assert (cfg["hyper"]["max_steps"], cfg["setup"]["micro_batch"], cfg["hyper"]["learning_rate"], cfg["setup"]["seq_len"]) == (7, 3, 0.5, 99)
    assert (cfg["hyper"]["epochs"], cfg["hyper"]["save_steps"]) == (2, 4)
    assert m.CONFIG["hyper"]["max_steps"] == -1  # CONFIG itself untouched
    plain = m.apply_overrides(m.CONFIG, m.parse_args([]))
    assert plain["dataset"] == str(m.HERE / "data" / "instructions.jsonl")  # relative to the script's folder
    assert plain["output_dir"] == str(m.HERE / "outputs" / "sft")
    hub = m.apply_overrides(m.CONFIG, m.parse_args(["--dataset", "org/name", "--model", "org/model"]))
    assert hub["dataset"] == "org/name" and hub["model"] == "org/model"


# --------------------------------------------------------------------------------------------- user strings stay data


def test_trust_remote_code_only_when_the_plan_says_so():
    plan = make_plan([("sft", "sft", "instruction", "", "", "bundled")], Setup(), trust_remote_code=True)
    assert config_of(render(plan)["train_sft.py"])["trust_remote_code"] is True
    plan.trust_remote_code = False
    text = render(plan)["train_sft.py"]
    assert config_of(text)["trust_remote_code"] is False
    assert re.findall(r"trust_remote_code=([^,)\n]+)", text) and set(re.findall(r"trust_remote_code=([^,)\n]+)", text)) == {'cfg["trust_remote_code"]'}


def test_hostile_strings_stay_data():
    plan = make_plan(
        [("sft", "sft", "instruction", "", "", HOSTILE), ("dpo", "dpo", "preference", "sft", "", HOSTILE)],
        Setup(method="lora", lora_targets="q_proj,v_proj"),
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
    assert "\n\"\"\"" not in readme and json.dumps(HOSTILE, ensure_ascii=False).replace("`", "\\u0060") in readme
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
    assert {"plan.toml", "README.md", "accelerate_config.yaml", "data/sample_instruction.jsonl", "data/sample_preference.jsonl", "data/sample_prompt.jsonl"} <= set(files)
    assert Plan.from_data(tomllib.loads(files["plan.toml"])) == plan
    for fmt, columns in (("instruction", {"messages"}), ("preference", {"prompt", "chosen", "rejected"}), ("prompt", {"prompt"})):
        rows = [json.loads(line) for line in files[f"data/sample_{fmt}.jsonl"].splitlines()]
        assert len(rows) >= 3 and all(set(row) == columns for row in rows)
        assert any(re.search("[\uac00-\ud7a3]", json.dumps(row, ensure_ascii=False)) for row in rows)
    readme = files["README.md"]
    order = [readme.index(f"python train_{name}.py") for name in ("sft", "reward", "ppo")]
    assert order == sorted(order)
    assert "14.2 GiB" in readme and "If it runs out of memory" in readme
    assert f"trl=={PPO_TRL}" in readme and "train_ppo_rloo.py" in readme


def test_bundled_data_has_english_and_korean_rows_in_trl_formats():
    data = resources.files("advisor") / "data"
    expected = {"instructions.jsonl": (35, {"messages"}), "preferences.jsonl": (25, {"prompt", "chosen", "rejected"}), "prompts.jsonl": (25, {"prompt"})}
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
    pins = dict(re.fullmatch(r"([a-z]+)==([0-9.]+)", dep).groups() for dep in pyproject["project"]["optional-dependencies"]["train"])
    assert pins == FALLBACK_PINS


# --------------------------------------------------------------------------------------------- the command


def test_generate_command_writes_a_run_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "run"
    r = run_advisor("generate", "--model", "tiny", "--method-kind", "rlhf", "--method", "qlora", "--seq-len", "256", "--response-len", "64", "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    written = json.loads(r.stdout)
    assert {Path(p).name for p in written} >= {"train_sft.py", "train_reward.py", "train_ppo.py", "train_ppo_rloo.py", "README.md", "plan.toml"}
    config = config_of((out / "train_reward.py").read_text())
    assert config["setup"]["method"] == "qlora" and config["setup"]["seq_len"] == 256 and config["base_from"] == "outputs/sft"
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
    mixtral = build_plan("mixtral-8x7b", Setup(method="lora", lora_targets="all-linear"), gpu="h100")
    assert mixtral.stages[0].setup.lora_dropout == 0.0
    assert stage_config(mixtral, mixtral.stages[0])["setup"]["lora_dropout"] == 0.0
    attention = build_plan("mixtral-8x7b", Setup(method="lora", lora_targets="attention"), gpu="h100")
    assert attention.stages[0].setup.lora_dropout == 0.05
    dense = build_plan("8b", Setup(method="lora", lora_targets="all-linear"), gpu="h100")
    assert dense.stages[0].setup.lora_dropout == 0.05
