"""The house rule: `checks/` (the domain) never imports `bot/` (the GitHub side), directly or relatively."""
import ast

from tests.conftest import ROOT


def _imports(path, root):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = path.relative_to(root).with_suffix("").parts[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            # `from ..x import y` inside checks/a/b.py resolves against checks/; `y` may be a module too.
            base = [*package[:max(0, len(package) - node.level + 1)]] if node.level else []
            module = [*base, *(node.module.split(".") if node.module else [])]
            for alias in node.names:
                yield node.lineno, ".".join([*module, alias.name])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            yield node.lineno, str(node.args[0].value)


def violations(root=ROOT):
    out = []
    for path in sorted((root / "checks").rglob("*.py")):
        for line, module in _imports(path, root):
            if module == "bot" or module.startswith("bot."):
                out.append(f"{path.relative_to(root)}:{line}: imports {module}")
    return out


def test_checks_never_imports_bot():
    assert violations() == []


def test_the_walk_sees_every_kind_of_import(tmp_path):
    pkg = tmp_path / "checks" / "sub"
    pkg.mkdir(parents=True)
    (pkg / "a.py").write_text("import bot.cli\nfrom bot import server\nfrom ... import bot\n"
                              "import importlib\nimportlib.import_module('bot.queue')\nimport botany\n")
    found = violations(tmp_path)
    assert [v.split(": ")[0] for v in found] == ["checks/sub/a.py:1", "checks/sub/a.py:2", "checks/sub/a.py:3",
                                                 "checks/sub/a.py:5"]
