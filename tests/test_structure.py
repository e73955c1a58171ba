"""The package's shape: no import cycle inside flask_cart.

Every import counts, at module level or inside a function, except those under
``if TYPE_CHECKING:`` (they exist for annotations only and never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "flask_cart"


def module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        names[name] = path
    return names


def _annotation_only(tree: ast.Module) -> set[int]:
    """The ids of the nodes under ``if TYPE_CHECKING:``."""
    nodes: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                nodes.update(id(sub) for sub in ast.walk(child))
    return nodes


def import_graph() -> dict[str, set[str]]:
    """Module -> the flask_cart modules it imports when it runs."""
    modules = module_names()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _annotation_only(tree)
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_imports() -> None:
    graph = import_graph()
    assert "flask_cart.stores.base" in graph["flask_cart.stores.sql"]
    assert "flask_cart.errors" in graph["flask_cart.views"]
    assert cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]


def test_no_import_cycle_inside_flask_cart() -> None:
    assert cycles(import_graph()) == []


def test_the_store_interface_is_a_leaf_of_the_stores() -> None:
    graph = import_graph()
    assert not {m for m in graph["flask_cart.stores.base"] if m.startswith("flask_cart.stores")}


#: What a shop may import: the package itself (its __all__) and its signals.
PUBLIC_MODULES = {"flask_cart", "flask_cart.signals"}


def flask_cart_imports(folder: Path) -> set[tuple[str, str]]:
    """(file, module) for every import of a flask_cart module under `folder`."""
    found = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and not node.level and node.module:
                modules = [node.module]
                if node.module == "flask_cart":
                    modules += [f"flask_cart.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            found.update((path.name, m) for m in modules if m.split(".")[0] == "flask_cart")
    return found


def test_the_demo_uses_only_the_public_api() -> None:
    demo = PACKAGE.parent / "demo_app"
    imports = flask_cart_imports(demo)
    assert ("hooks.py", "flask_cart") in imports  # the check sees the demo's imports
    private = {
        (name, module)
        for name, module in imports
        if module not in PUBLIC_MODULES and module.rpartition(".")[2] not in _public_names()
    }
    assert private == set()


def _public_names() -> set[str]:
    import flask_cart

    return set(flask_cart.__all__)
