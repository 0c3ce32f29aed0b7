"""Turn a Plan into a run folder: `common.py` (the helpers every stage shares, written once), one training script per
stage (both composed in scripts.py), the accelerate config (layout.py), a README (readme.py), sample data and the
plan itself. `render` and `write_run` are what `advisor generate` and the wizard call. Nothing here imports torch.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

from ..errors import AdvisorError
from .config_block import BUNDLED
from .layout import accelerate_config
from .pins import package_versions
from .scripts import render_common, render_script, stage_scripts

DATA = resources.files("advisor") / "data"
SAMPLE_TEXT = [
    {"text": "Fine-tuning adapts a pretrained language model to a task with a small amount of data."},
    {"text": "미세 조정은 사전 학습된 언어 모델을 적은 데이터로 특정 작업에 맞추는 과정입니다."},
    {"text": "LoRA trains two small matrices per layer instead of the full weight matrix."},
]
STAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def _jsonl(rows) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def sample_rows(data_format: str) -> list[dict]:
    if data_format == "text":
        return SAMPLE_TEXT
    lines = (DATA / BUNDLED[data_format]).read_text(encoding="utf-8").splitlines()
    # two English and two Korean rows
    korean = [line for line in lines if re.search("[\uac00-\ud7a3]", line)]
    english = [line for line in lines if line not in korean]
    return [json.loads(line) for line in english[:2] + korean[:2]]


def render(plan, *, versions: dict[str, str] | None = None) -> dict[str, str]:
    """Every file of the run folder: relative path -> text."""
    from .readme import readme

    versions = versions or package_versions()
    names = [stage.name for stage in plan.stages]
    for name in names:
        if not STAGE_NAME.fullmatch(name):
            raise AdvisorError(f"stage name {name!r} cannot name a script: use letters, digits, '-' and '_' (at most 64)")
    if len(set(names)) != len(names):
        raise AdvisorError(f"stage names must be unique, got {', '.join(names)}")
    if not plan.stages:
        raise AdvisorError("the plan has no stages")
    files: dict[str, str] = {"common.py": render_common()}
    for stage in plan.stages:
        for name, kind in stage_scripts(stage):
            files[name] = render_script(plan, stage, kind, versions)
    files["accelerate_config.yaml"] = accelerate_config(plan.stages[0].setup)
    for data_format in dict.fromkeys(stage.data_format for stage in plan.stages):
        files[f"data/sample_{data_format}.jsonl"] = _jsonl(sample_rows(data_format))
        if data_format in BUNDLED and any(s.dataset in ("", "bundled") and s.data_format == data_format for s in plan.stages):
            files[f"data/{BUNDLED[data_format]}"] = (DATA / BUNDLED[data_format]).read_text(encoding="utf-8")
    if any(s.dataset in ("", "bundled") and s.data_format == "text" for s in plan.stages):
        files["data/sample_text.jsonl"] = _jsonl(SAMPLE_TEXT)
    files["plan.toml"] = plan.to_toml()
    files["README.md"] = readme(plan, files, versions)
    return dict(sorted(files.items()))


def write_run(plan, out_dir: Path, force: bool = False, *, versions: dict[str, str] | None = None) -> list[Path]:
    """Write the run folder; an existing non-empty folder is left alone unless `force`."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise AdvisorError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise AdvisorError(f"{out_dir} exists and is not empty; pass --force to overwrite its files")
    files = render(plan, versions=versions)
    written = []
    for rel, text in files.items():
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
