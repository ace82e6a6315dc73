"""House rules that tools do not check: import direction and module size."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import REPO

PACKAGE = REPO / "monitor"
STAGES = ["ingest", "decode", "state", "engine", "outputs"]
SHARED = {"monitor.errors", "monitor.settings", "monitor.decode.events"}
# Order of the pipeline: a stage may import earlier stages, never later ones.
ORDER = {"decode": 0, "state": 1, "engine": 2, "ingest": 3, "outputs": 3}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_stages_import_only_earlier_stages() -> None:
    backward = []
    for stage, rank in ORDER.items():
        for path in (PACKAGE / stage).rglob("*.py"):
            for module in _imports(path):
                parts = module.split(".")
                if parts[0] != "monitor" or module in SHARED or len(parts) < 2:
                    continue
                other = parts[1]
                if other in ORDER and ORDER[other] > rank:
                    backward.append(f"{path.relative_to(REPO)} imports {module}")

    assert backward == []


def test_modules_stay_under_800_lines() -> None:
    long = [
        f"{p.relative_to(REPO)}: {n}"
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) >= 800
    ]

    assert long == []


def test_every_module_declares_all() -> None:
    missing = [
        str(p.relative_to(REPO))
        for p in PACKAGE.rglob("*.py")
        if p.name not in ("__main__.py",)
        and "__all__" not in p.read_text(encoding="utf-8")
        and p.name != "__init__.py"
    ]

    assert missing == []
