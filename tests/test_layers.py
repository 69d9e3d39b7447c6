"""The package's layers: every import points down (or sideways within a package), never up."""

import ast
from pathlib import Path

import matdesinne

#: Lower layers first. Packages on one layer do not import each other.
LAYERS = [
    {"errors"},
    {"io", "text"},
    {"plotting"},
    {"data"},
    {"materials"},
    {"models"},
    {"pipeline"},
    {"evaluation", "analysis", "validation"},
    {"loop"},
    {"cli"},
    {"__main__"},
]
ROOT = Path(matdesinne.__file__).parent


def layer_of(part: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if part in names)


def imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def test_every_module_belongs_to_a_layer():
    parts = {p.relative_to(ROOT).parts[0].removesuffix(".py") for p in ROOT.rglob("*.py")} - {"__init__"}
    assert parts <= set().union(*LAYERS), parts - set().union(*LAYERS)


def test_no_import_runs_up_the_layers_or_across_one():
    wrong = []
    for path in ROOT.rglob("*.py"):
        own = path.relative_to(ROOT).parts[0].removesuffix(".py")
        if own == "__init__":
            continue
        for module in imports(path):
            parts = module.split(".")
            if parts[0] != "matdesinne" or len(parts) < 2 or parts[1] == own:
                continue
            if layer_of(parts[1]) >= layer_of(own):
                wrong.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not wrong, wrong
