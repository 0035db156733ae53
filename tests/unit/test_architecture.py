"""The rooms of the house and the arrows between them (docs/architecture.md), held by the imports.

Every import counts, module-level or inside a function: a lazy import is still an arrow."""
from __future__ import annotations

import ast
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
    # The light functions deploy shared/ alone (their zips hold no pipeline_compiler/).
    found = upward_imports(REPO / "shared", ("pipeline_compiler", "tensorflow", "tfx", "tensorflow_recommenders"))
    assert found == [], "shared/ reaches into the pipeline package; hand what it needs in instead:\n" + "\n".join(found)


def test_the_check_sees_a_lazy_upward_import(tmp_path):
    package = tmp_path / "shared"
    package.mkdir()
    (package / "m.py").write_text("def f():\n    from pipeline_compiler.components import register_local\n")
    assert upward_imports(package, ("pipeline_compiler",)) == ["shared/m.py:2 imports pipeline_compiler.components"]
