"""The library's layering as a tested fact: every module imports only modules declared before it, and
docs/development.md's module table lists every module in this order."""

import ast
import re
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "anomclr_ray"

# data -> augment -> encoder -> scores -> metrics -> tracking/report, with the platform around it
LAYERS = (
    "errors", "configs",
    "infra.storage", "infra.raycluster", "infra.monitoring", "infra",
    "events.layout", "events.kinematics", "events.validate", "events.io", "events.preprocess", "events.dataset",
    "events.plots", "events.reference", "events.calibration", "events",
    "events.generation.processes", "events.generation.detector", "events.generation.pileup",
    "events.generation.pythia_chunk", "events.generation.runner", "events.generation",
    "method.augment", "method.model", "method.losses", "method.metrics", "method.names",
    "nplm.config", "nplm.estimator", "nplm.toys", "nplm.analysis", "nplm",
    "method.score", "method.evaluate", "method",
    "train.config", "train.device", "train.loop", "train.checkpoint", "train.distributed", "train",
    "report.tracking", "report.figures", "report.build", "report.ui", "report",
    "export.domain", "export.scorer", "export.card", "export.registry", "export",
    "study", "study_script", "cli",
)


PACKAGES = ("infra", "events", "events.generation", "method", "nplm", "train", "report", "export")  # their modules are listed


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name:  # the root package holds only constants (USER_ERRORS), which every module may use
            out[name] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules `name` imports, at any depth of its code (lazy imports count)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - (node.level - 1)] + (node.module.split(".") if node.module else [])
            for alias in node.names:
                target = ".".join([*base, alias.name])
                found.add(target if target in modules else ".".join(base))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found |= {n.removeprefix("anomclr_ray.") for n in names if n.startswith("anomclr_ray.")}
    return found - {"", name}


def test_every_module_is_declared_once():
    assert sorted(LAYERS) == sorted(_modules()) and len(set(LAYERS)) == len(LAYERS)


def test_every_module_imports_only_from_its_left():
    modules = _modules()
    broken = [f"{name} imports {dep}" for name in LAYERS for dep in sorted(_imports(name, modules[name], modules))
              if LAYERS.index(dep) > LAYERS.index(name)]
    assert not broken, broken


def test_the_module_table_lists_the_modules_in_this_order():
    rows = re.findall(r"^\| `anomclr_ray/([\w/]+?)(?:\.py|/)` \|", (REPO / "docs" / "development.md").read_text(), re.M)
    assert [r.replace("/", ".") for r in rows] == [m for m in LAYERS if m not in PACKAGES]
