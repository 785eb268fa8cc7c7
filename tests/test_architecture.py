"""The one-way architecture: every import (module level and inside functions) points down the pipeline,
and no module imports itself back through others.

The stages, in order; a module may import its own stage and the stages before it, never one after:

    core -> events -> quantization -> models -> evaluation -> hls -> emulation -> reports -> serving -> cli

``core`` is the shared vocabulary (fixed point, atomic files, tool versions); ``firmware_projects``
holds only target files. A new top-level package must be added to :data:`STAGES` (a test says so).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "l1ad"
STAGES = (
    "core",
    "events",
    "quantization",
    "models",
    "evaluation",
    "hls",
    "emulation",
    "reports",
    "serving",
    "cli",
)
#: Top-level folders that are not stages: data-only packages, and what is not in the wheel.
NOT_STAGES = {"firmware_projects", "tests", "scripts", "runs", "build", ".venv", ".git", ".ci", ".ruff_cache",
              ".pytest_cache"}  # fmt: skip
MAX_LINES = 450


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([PACKAGE, *parts])


def package_modules(root: Path) -> dict[str, Path]:
    """``{module name: file}`` of every module of the package under ``root`` (stage folders only)."""
    out = {}
    top = [root / "__init__.py"] if (root / "__init__.py").is_file() else []
    folders = [
        d for d in sorted(root.iterdir()) if d.is_dir() and d.name not in NOT_STAGES and any(d.rglob("*.py"))
    ]
    for path in top + [p for d in folders for p in sorted(d.rglob("*.py"))]:
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        out[module_name(path, root)] = path
    return out


def imports_of(name: str, path: Path) -> set[str]:
    """Every ``l1ad`` module ``name`` imports, at any depth of the AST (functions included), resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)]
                mod = ".".join(anchor + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != PACKAGE:
                continue
            found.add(mod)
            # `from l1ad.models import registry` imports the submodule l1ad.models.registry
            found.update(f"{mod}.{a.name}" for a in node.names)
    return found


def with_packages(modules: set[str]) -> set[str]:
    """Importing ``l1ad.a.b.c`` also runs ``l1ad/a/__init__`` and ``l1ad/a/b/__init__``: add them."""
    out = set(modules)
    for m in modules:
        parts = m.split(".")
        out.update(".".join(parts[:i]) for i in range(2, len(parts)))
    return out


def import_graph(root: Path) -> dict[str, set[str]]:
    """``{module: l1ad modules it imports}`` (with the packages each import runs), restricted to
    modules that exist under ``root``; a package's ``__init__`` is not counted as importing itself."""
    modules = package_modules(root)
    graph = {}
    for name, path in modules.items():
        deps = with_packages(imports_of(name, path))
        graph[name] = {m for m in deps if m in modules and m != name and not name.startswith(m + ".")}
    return graph


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def upward_imports(graph: dict[str, set[str]], stages: tuple[str, ...] = STAGES) -> list[str]:
    """``"a -> b (stage X imports later stage Y)"`` for every import from a stage into a later one."""
    order = {s: i for i, s in enumerate(stages)}
    bad = []
    for mod, deps in sorted(graph.items()):
        src = stage_of(mod)
        for dep in sorted(deps):
            dst = stage_of(dep)
            if src in order and dst in order and order[dst] > order[src]:
                bad.append(f"{mod} -> {dep} ({src} imports the later stage {dst})")
    return bad


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


# ----------------------------------------------------------------------------- the tree as it is
GRAPH = import_graph(ROOT)


def test_every_top_level_package_is_a_declared_stage() -> None:
    folders = {
        p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".") and any(p.rglob("*.py"))
    }
    folders -= {p.name for p in ROOT.iterdir() if p.name.endswith(".egg-info")}
    undeclared = folders - set(STAGES) - NOT_STAGES
    assert not undeclared, (
        f"add {sorted(undeclared)} to STAGES in tests/test_architecture.py, in pipeline order"
    )
    assert set(STAGES) <= folders


def test_no_upward_import() -> None:
    assert len(GRAPH) > 50  # the checker sees the package
    assert upward_imports(GRAPH) == []


def test_no_import_cycle() -> None:
    assert import_cycles(GRAPH) == []


def test_every_package_folder_has_an_init() -> None:
    """Folders of modules are regular packages (the wheel lists them; namespace packages slip through)."""
    missing = [str(d.relative_to(ROOT)) for d in {p.parent for p in package_modules(ROOT).values()}
               if not (d / "__init__.py").is_file()]  # fmt: skip
    assert not missing, missing


def test_core_imports_no_stage() -> None:
    for mod, deps in GRAPH.items():
        if stage_of(mod) == "core":
            assert {stage_of(d) for d in deps} <= {"core", None}, (mod, deps)


def test_modules_are_small() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in package_modules(ROOT).items()}
    big = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not big, f"split these by job (aim for < 400 lines): {big}"


# ----------------------------------------------------------------------------- the checker can fail
def _plant(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tmp_path


def test_planted_upward_import_inside_a_function_is_found(tmp_path: Path) -> None:
    root = _plant(tmp_path, {
        "__init__.py": "", "hls/__init__.py": "", "emulation/__init__.py": "",
        "emulation/rtl.py": "X = 1\n",
        "hls/convert.py": "def f():\n    from l1ad.emulation.rtl import X\n    return X\n",
    })  # fmt: skip
    bad = upward_imports(import_graph(root))
    assert bad == [
        "l1ad.hls.convert -> l1ad.emulation (hls imports the later stage emulation)",
        "l1ad.hls.convert -> l1ad.emulation.rtl (hls imports the later stage emulation)",
    ]


def test_planted_relative_and_submodule_imports_are_resolved(tmp_path: Path) -> None:
    root = _plant(tmp_path, {
        "__init__.py": "", "events/__init__.py": "", "models/__init__.py": "",
        "models/registry.py": "",
        "events/io.py": "from ..models import registry\n",
    })  # fmt: skip
    assert upward_imports(import_graph(root)) == [
        "l1ad.events.io -> l1ad.models (events imports the later stage models)",
        "l1ad.events.io -> l1ad.models.registry (events imports the later stage models)",
    ]


def test_planted_cycle_is_found(tmp_path: Path) -> None:
    root = _plant(tmp_path, {
        "__init__.py": "", "hls/__init__.py": "",
        "hls/convert.py": "import l1ad.hls.estimate\n",
        "hls/estimate.py": "def f():\n    from l1ad.hls import convert\n",
    })  # fmt: skip
    assert import_cycles(import_graph(root)) == [["l1ad.hls.convert", "l1ad.hls.estimate"]]
    assert upward_imports(import_graph(root)) == []  # same stage: only the cycle is wrong


def test_the_real_tree_with_a_planted_upward_import_fails(tmp_path: Path) -> None:
    """Copy the package, add one upward import to a real module, and the check names it."""
    import shutil

    copy = tmp_path / "pkg"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(*NOT_STAGES, "__pycache__", "*.egg-info"))
    target = copy / "events" / "io.py"
    target.write_text(target.read_text() + "\n\ndef _planted():\n    from l1ad.reports import budget\n")
    bad = upward_imports(import_graph(copy))
    assert "l1ad.events.io -> l1ad.reports.budget (events imports the later stage reports)" in bad
