"""The rooms of the house and the arrows between them (docs/architecture.md), held by the imports.

Every import counts, module-level or inside a function: a lazy import is still an arrow."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def imports_of(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def upward_imports(root: Path, forbidden: tuple[str, ...]) -> list[str]:
    return [f"{path.relative_to(root.parent)}:{line} imports {module}"
            for path in sorted(root.rglob("*.py")) for line, module in imports_of(path)
            if module.split(".")[0] in forbidden]


def test_shared_never_imports_the_pipeline_package_or_tensorflow():
    # The light functions deploy shared/ alone (their zips hold no pipeline_compiler/), and their locked
    # packages hold no numpy: a numpy import in shared/ stops pipeline-events from starting (the rehearsal
    # found one: shared/domain/warm_start.py, now pipeline_compiler/modules/embedding_rows.py).
    found = upward_imports(REPO / "shared", ("pipeline_compiler", "tensorflow", "tfx", "tensorflow_recommenders",
                                             "numpy"))
    assert found == [], "shared/ reaches into the pipeline package; hand what it needs in instead:\n" + "\n".join(found)


def test_the_check_sees_a_lazy_upward_import(tmp_path):
    package = tmp_path / "shared"
    package.mkdir()
    (package / "m.py").write_text("def f():\n    from pipeline_compiler.components import register_local\n")
    assert upward_imports(package, ("pipeline_compiler",)) == ["shared/m.py:2 imports pipeline_compiler.components"]


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path) -> dict[str, set[str]]:
    """module → the modules of the same tree it imports (`from a import b` counts a.b when it is a module)."""
    modules = {module_name(p): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                # a package's __init__ is not an arrow of its own modules
                if target and target != name and not name.startswith(target + "."):
                    edges.add(target)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_no_import_circle_in_shared():
    found = cycles(import_graph(REPO / "shared"))
    assert found == [], "import circles (lazy imports count):\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_circle_check_sees_a_lazy_circle(tmp_path, monkeypatch):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def f():\n    from pkg.a import x\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    assert cycles(import_graph(package)) == [["pkg.a", "pkg.b", "pkg.a"]]


# What each room of shared/ may import from the others (docs/architecture.md). The pure rooms (domain,
# contract) reach no outside system; adapters know no service; services know no HTTP; nothing below the
# entry points builds adapters (shared/composition.py does, once).
MAY_NOT_IMPORT = {
    "shared.domain": ("shared.adapters", "shared.services", "shared.http", "shared.composition", "shared.settings",
                      "shared.consumer"),
    "shared.contract": ("shared.adapters", "shared.services", "shared.http", "shared.composition", "shared.settings",
                        "shared.consumer"),
    "shared.adapters": ("shared.services", "shared.http", "shared.composition"),
    "shared.services": ("shared.http", "shared.composition"),
}


def wrong_arrows(graph: dict[str, set[str]]) -> list[str]:
    return [f"{module} imports {target}"
            for module, targets in sorted(graph.items())
            for room, forbidden in MAY_NOT_IMPORT.items() if module == room or module.startswith(room + ".")
            for target in sorted(targets) if any(target == f or target.startswith(f + ".") for f in forbidden)]


def test_each_room_of_shared_imports_only_the_rooms_below_it():
    found = wrong_arrows(import_graph(REPO / "shared"))
    assert found == [], "imports against the rooms' order (docs/architecture.md):\n" + "\n".join(found)


def test_the_room_check_sees_a_domain_module_reaching_an_adapter():
    graph = {"shared.domain.runs": {"shared.adapters.pipelines", "shared.contract.nodes"}}
    assert wrong_arrows(graph) == ["shared.domain.runs imports shared.adapters.pipelines"]


def aliased_project_imports(paths) -> list[str]:
    """`from shared.x import y as z` where y is one of our modules: two modules sharing a name."""
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "shared":
                for alias in node.names:
                    target = REPO / Path(*node.module.split("."), alias.name)
                    if alias.asname and (target.with_suffix(".py").exists() or target.is_dir()):
                        found.append(f"{path.relative_to(REPO)}:{node.lineno} imports {alias.name} as {alias.asname}")
    return found


def test_no_module_of_shared_needs_an_alias_where_the_project_imports_it():
    roots = ("shared", "functions", "pipeline_compiler", "scripts", "trainyard_cli", "bench")
    found = aliased_project_imports(p for root in roots for p in sorted((REPO / root).rglob("*.py")))
    assert found == [], "modules imported under another name (give them distinct names instead):\n" + "\n".join(found)


def layout_table() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("\n## Layout\n"):]
    return section[:section.index("\n## ", 4)]


def test_the_readme_layout_table_names_every_folder_and_every_room_of_shared():
    import subprocess

    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    folders = sorted({path.split("/")[0] for path in tracked if "/" in path and not path.startswith(".")})
    rooms = sorted(p.parent.name for p in (REPO / "shared").glob("*/__init__.py"))
    table = layout_table()
    missing = [f"{name}/" for name in folders if f"`{name}/" not in table]
    missing += [f"shared/{name}/" for name in rooms if f"`{name}/`" not in table and f"`shared/{name}/`" not in table]
    assert missing == [], "README.md's layout table does not name: " + ", ".join(missing)
