"""The shape of the package: no import cycles (lazy imports included), no oversized modules."""

from __future__ import annotations

import ast
from pathlib import Path

import seminas_tune

ROOT = Path(seminas_tune.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every module's imports of other package modules, those inside functions included."""
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            deps |= {t for t in targets if t in modules and t != name}
        graph[name] = deps
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep) :] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _subpackage(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_import_cycle_between_subpackages():
    graph: dict[str, set[str]] = {}
    for mod, deps in _imports().items():
        graph.setdefault(_subpackage(mod), set()).update(
            _subpackage(d) for d in deps if _subpackage(d) != _subpackage(mod)
        )
    graph.pop("seminas_tune", None)  # the top-level re-exports
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph))}"


def test_no_import_cycle_between_modules():
    graph = {m: {d for d in deps if not d.endswith("__init__")} for m, deps in _imports().items()}
    packages = {m for m in graph if (ROOT.parent / m.replace(".", "/") / "__init__.py").exists()}
    graph = {m: deps - packages for m, deps in graph.items() if m not in packages}
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph))}"


def test_modules_stay_small():
    big = {
        str(p.relative_to(ROOT.parent)): n for p in ROOT.rglob("*.py") if (n := len(p.read_text().splitlines())) > 420
    }
    assert not big, f"modules over ~400 lines: {big}"


def test_one_version_string():
    from importlib.metadata import version

    assert seminas_tune.__version__ == version("seminas-tune")


def _run(*cmd: str):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", *cmd], cwd=ROOT.parent, capture_output=True, text=True, timeout=900)


def test_ruff_lint_and_format_are_clean():
    lint = _run("ruff", "check", ".")
    assert lint.returncode == 0, lint.stdout[-3000:]
    fmt = _run("ruff", "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout[-3000:]


def test_public_api_type_checks():
    """mypy over what users import: the package root, searchers, spaces and contract suites."""
    done = _run(
        "mypy", "seminas_tune/__init__.py", "seminas_tune/search", "seminas_tune/spaces", "seminas_tune/testing"
    )
    assert done.returncode == 0, done.stdout[-3000:]
