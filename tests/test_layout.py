"""The layer picture, checked on the source: who may import whom, and one way to the services."""

from __future__ import annotations

import ast
from pathlib import Path

SERVICE = Path(__file__).resolve().parent.parent / "service"
# Below the HTTP layer: no Flask, and nothing from the layers above.
FLASK_FREE = ("gateway", "verification", "admin")
ABOVE = ("service.http", "service.app", "flask")


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports at run time (``if TYPE_CHECKING:`` blocks left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and getattr(block.test, "id", None) == "TYPE_CHECKING"
                   for node in ast.walk(block)}
    names = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_admin_side_is_one_package_below_http():
    package = SERVICE / "admin"
    modules = {path.stem for path in package.glob("*.py")}
    assert {"ops", "audit", "console_sessions", "credits"} <= modules
    for path in package.glob("*.py"):
        assert not {name for name in _imports(path) if name.startswith(ABOVE)}, path.name


def test_nothing_imports_upward():
    for layer in FLASK_FREE:
        for path in (SERVICE / layer).rglob("*.py"):
            upward = {name for name in _imports(path) if name.startswith(ABOVE)}
            assert not upward, f"{path.relative_to(SERVICE)} imports {upward}"


def test_views_reach_the_services_through_one_accessor():
    lookups = [str(path.relative_to(SERVICE)) for path in SERVICE.rglob("*.py")
               if "current_app.extensions" in path.read_text(encoding="utf-8")]
    assert lookups == ["http/context.py"]
