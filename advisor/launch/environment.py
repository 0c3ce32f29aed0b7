"""Can this machine run the plan? Installed training packages, CUDA GPUs (count, free memory, bf16), measured
without importing torch (`probe_gpus` asks a child interpreter), or injected by tests (`GpuFacts`)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import subprocess
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from ..errors import AdvisorError
from ..hubaccess import missing_token_warning
from .commands import ACCELERATE_CONFIG

if TYPE_CHECKING:
    from ..plan import Plan

INSTALL_HINT = "pip install 'advisor[train]'"


@dataclass
class GpuFacts:
    """What the machine offers. Injected by tests to simulate a card; `probe_gpus` measures the real one."""

    count: int
    free_gib: list[float] = field(default_factory=list)
    bf16: bool = True
    names: list[str] = field(default_factory=list)

    def name(self, index: int) -> str:
        return self.names[index] if index < len(self.names) else f"GPU {index}"


_PROBE = r"""
import json
import torch
out = {"count": 0, "free_gib": [], "bf16": False, "names": []}
if torch.cuda.is_available():
    out["count"] = torch.cuda.device_count()
    for i in range(out["count"]):
        free, _total = torch.cuda.mem_get_info(i)
        out["free_gib"].append(free / 2**30)
        out["names"].append(torch.cuda.get_device_name(i))
    out["bf16"] = all(torch.cuda.get_device_capability(i)[0] >= 8 for i in range(out["count"]))
print("ADVISOR_GPU_FACTS " + json.dumps(out))
"""


def probe_gpus(python: str = sys.executable, timeout: float = 180) -> GpuFacts:
    """CUDA devices, free memory and bf16 support, measured by a child interpreter (the launcher stays torch-free)."""
    try:
        done = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AdvisorError(f"querying the GPUs took more than {timeout:.0f} s (is the driver hung?)") from None
    for line in done.stdout.splitlines():
        if line.startswith("ADVISOR_GPU_FACTS "):
            data = json.loads(line.split(" ", 1)[1])
            return GpuFacts(count=data["count"], free_gib=data["free_gib"], bf16=data["bf16"], names=data["names"])
    last = (done.stderr.strip().splitlines() or ["no output"])[-1]
    raise AdvisorError(f"could not query the GPUs with torch: {last}")


@dataclass
class EnvReport:
    packages: dict[str, str]  # name -> installed version
    gpu: GpuFacts
    device: str  # "cuda" or "cpu"
    gpus_used: int  # GPUs per node the run will use (0 on CPU)
    need_gib: float | None  # the plan's per-GPU figure on the card, when the plan has an estimate
    warnings: list[str] = field(default_factory=list)
    forced: list[str] = field(default_factory=list)  # checks that failed and were overridden by --force

    def summary(self) -> str:
        versions = ", ".join(f"{name} {version}" for name, version in self.packages.items())
        if self.device == "cpu":
            where = "CPU (no CUDA GPU)"
        else:
            free = ", ".join(f"{self.gpu.name(i)} {self.gpu.free_gib[i]:.1f} GiB free" for i in range(self.gpus_used))
            where = f"{self.gpus_used} GPU(s): {free}"
        return f"device: {where}\npackages: {versions}"


def _plan_layout(plan: "Plan") -> tuple[int, int]:
    return max(s.setup.gpus for s in plan.stages), max(s.setup.nodes for s in plan.stages)


def package_versions(names: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Installed versions of `names`, and the ones that are missing (found without importing them)."""
    found, missing = {}, []
    for name in names:
        if importlib.util.find_spec(name) is None:
            missing.append(name)
            continue
        found[name] = _version(name)
    return found, missing


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def wanted_packages(plan: "Plan") -> list[str]:
    """Import names of every package the plan's scripts list (scriptgen.pins.required, the one list for both): the
    training stack, bitsandbytes for QLoRA and 8-bit optimizers, GaLore's packages for --galore."""
    from ..scriptgen.pins import IMPORT_NAMES, required  # here: importing advisor.scriptgen costs ~30 ms

    return list(dict.fromkeys(IMPORT_NAMES.get(d, d) for s in plan.stages for d in required(s.setup)))


def check_environment(plan: "Plan", force: bool = False, gpu_facts: GpuFacts | None = None) -> EnvReport:
    """Can this machine run the plan? Missing packages always stop the launch; too few GPUs, too little free
    memory or no bf16 stop it unless `force`. Without CUDA the run goes to the CPU with a warning."""
    qlora = any(s.setup.adaptation == "qlora" for s in plan.stages)
    packages, missing = package_versions(wanted_packages(plan))
    if missing:
        raise AdvisorError(f"training packages not installed: {', '.join(missing)}; install them with: {INSTALL_HINT}")

    facts = gpu_facts
    warnings: list[str] = []
    token = missing_token_warning(plan.model.hf_id or plan.model.key)
    if token:
        warnings.append(token)
    if facts is None:
        try:
            facts = probe_gpus()
        except AdvisorError as exc:
            if not force:
                raise AdvisorError(f"{exc}; pass --force to run on the CPU") from None
            warnings.append(f"{exc}; running on the CPU (--force)")
            facts = GpuFacts(count=0)

    gpus, nodes = _plan_layout(plan)
    need = plan.estimate.device_gib if plan.estimate else None
    card = plan.hardware.gpu_name or plan.hardware.gpu
    forced: list[str] = []
    if facts.count == 0:
        report = EnvReport(packages, facts, "cpu", 0, need, warnings)
        planned = f" ({need:.1f} GiB per GPU on {card})" if need is not None else ""
        warnings.append(f"no CUDA GPU found: every stage runs on the CPU in one process, slowly; the plan's memory estimate{planned} does not apply")
        if qlora:
            warnings.append("QLoRA's 4-bit layers (bitsandbytes) are built for CUDA GPUs; on the CPU the run may fail")
        return report

    used = min(gpus, facts.count)
    problems = []
    if facts.count < gpus:
        problems.append(f"the plan trains on {gpus} GPUs per node but this machine has {facts.count}")
    if need is not None:
        for i in range(used):
            free = facts.free_gib[i] if i < len(facts.free_gib) else 0.0
            if free < need:
                problems.append(
                    f"the run needs about {need:.1f} GiB per GPU (the plan's estimate on the card) but {facts.name(i)} (GPU {i}) has {free:.1f} GiB free"
                )
    else:
        warnings.append("the plan has no memory estimate, so free GPU memory was not checked")
    if not facts.bf16 and any(s.setup.precision.startswith("bf16") for s in plan.stages):
        problems.append("the plan computes in bf16, which this GPU does not support; plan again with --precision fp16-mixed")
    if problems:
        if not force:
            raise AdvisorError("; ".join(problems) + "; pass --force to launch anyway")
        forced = problems
        warnings.extend(f"{p} (launching anyway: --force)" for p in problems)
    if nodes > 1:
        warnings.append(f"the plan spans {nodes} nodes: run `advisor launch` on every node, with machine_rank set per node in {ACCELERATE_CONFIG}")
    return EnvReport(packages, facts, "cuda", used, need, warnings, forced)
