"""The harness's layers: which module may import which (issue: a layout that shows its layers).

Layers, top to bottom: ``metrics``/``files`` -> ``catalogue`` -> ``runner`` -> ``experiments``
-> ``reports`` -> ``cli``. A module may import its own layer and the layers above it, never
one below; and no two modules import each other, directly or through others.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "larq_bamsprod" / "harness"
LAYERS = {"metrics": 0, "files": 0, "words": 0, "workload": 1, "catalogue": 1, "runner": 2,
          "experiments": 3, "reports": 3, "api": 4, "cli": 5, "__init__": 5, "__main__": 6}


def _module_name(path: Path) -> str:
    parts = path.relative_to(HARNESS).with_suffix("").parts
    return ".".join(p for p in parts if p != "__init__") or "__init__"


def _harness_imports(path: Path) -> set[str]:
    """Every ``larq_bamsprod.harness.X[.Y]`` a module imports, at any depth of the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "larq_bamsprod.harness":
                found |= {alias.name for alias in node.names}
            elif node.module.startswith("larq_bamsprod.harness."):
                base = node.module[len("larq_bamsprod.harness."):]
                sub = {f"{base}.{alias.name}" for alias in node.names}
                found |= {s for s in sub if (HARNESS / (s.replace(".", "/") + ".py")).exists()}
                found.add(base)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("larq_bamsprod.harness."):
                    found.add(alias.name[len("larq_bamsprod.harness."):])
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in HARNESS.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        graph[name] = {m for m in _harness_imports(path) if m in modules and m != name}
    return graph


def _layer(module: str) -> int:
    return LAYERS[module.split(".")[0]]


def test_no_module_imports_a_layer_below_its_own():
    wrong = [f"{a} imports {b}" for a, deps in _graph().items() for b in deps
             if _layer(b) > _layer(a)]
    assert not wrong, wrong


def test_the_harness_imports_form_no_circle():
    graph = _graph()
    circles = []

    def visit(node, path):
        for nxt in graph.get(node, ()):
            if nxt == path[0]:
                circles.append(" -> ".join(path + [nxt]))
            elif nxt not in path and len(path) < 12:
                visit(nxt, path + [nxt])

    for start in graph:
        visit(start, [start])
    assert not circles, circles[:5]


@pytest.mark.slow
def test_evidence_imports_no_optuna():
    # RESULTS' tables are read from committed files: no tuning machinery is needed for that.
    code = ("import sys, larq_bamsprod.harness.reports.evidence as e; "
            "print('optuna' in sys.modules, 'larq_bamsprod.harness.experiments.tune' "
            "in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["False", "False"]
