"""Structure figures of the plugin's Python packages, from their imports and definitions (nothing is run).

For each package folder: its modules and lines; for ``treeseg_plugin/engine``: the import arrows between its
modules, the import levels (the longest chain of imports, counted in modules), string imports
(``import_module``), modules over 350 lines, functions over 60 lines, and the functions that take a whole
job config (a parameter annotated with one of the job config classes)::

    .venv/bin/python scripts/structure_figures.py [REPO]

docs/architecture.md quotes its output before and after the redesign.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from functools import cache
from pathlib import Path

JOB_CONFIGS = {"SegmentationConfig", "ClusterFitConfig", "CanopyHeightConfig", "ClassifyConfig"}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(root: Path, path: Path, tree: ast.Module) -> set[str]:
    """Modules of this tree that ``path`` imports (relative and absolute, ``from pkg import module`` too)."""
    name = module_name(root, path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def main(repo: Path) -> None:
    files = sorted(p for folder in ("treeseg_plugin", "processing_provider") for p in (repo / folder).rglob("*.py"))
    per_folder: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    trees, lines = {}, {}
    for path in files:
        text = path.read_text(encoding="utf-8")
        folder = str(path.parent.relative_to(repo))
        per_folder[folder][0] += path.name != "__init__.py"
        per_folder[folder][1] += text.count("\n")
        trees[path], lines[path] = ast.parse(text), text.count("\n")
    print("modules (without __init__) and lines per folder:")
    for folder, (count, total) in sorted(per_folder.items()):
        print(f"  {folder:40s} {count:3d} modules {total:6d} lines")

    engine = {module_name(repo, p): p for p in files if "treeseg_plugin/engine" in str(p)}
    arrows = {name: {t for t in imports_of(repo, path, trees[path]) if t in engine and t != name}
              for name, path in engine.items()}
    # a package's __init__ re-exports: an arrow to it is not a level of its own
    arrows = {name: targets - {t for t in targets if name.startswith(t + ".")} for name, targets in arrows.items()}

    @cache
    def level(name: str, seen: tuple = ()) -> int:
        if name in seen:
            return 0  # a cycle: reported below
        return 1 + max((level(t, (*seen, name)) for t in arrows[name]), default=0)

    loose = [n for n, p in engine.items() if p.parent.name == "engine" and p.name != "__init__.py"]
    print(f"engine: {len(engine)} modules ({len(loose)} loose at its top level), "
          f"{sum(len(t) for t in arrows.values())} import arrows, {max(level(n) for n in engine)} import levels")
    strings = [str(p.relative_to(repo)) for p in files if "import_module(" in p.read_text(encoding="utf-8")]
    print(f"string imports (import_module): {strings or 'none'}")
    print("production modules over 350 lines:",
          [f"{p.relative_to(repo)} ({lines[p]})" for p in files if lines[p] > 350] or "none")
    long_functions, config_takers = [], []
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = node.end_lineno - node.lineno + 1
                if size > 60:
                    long_functions.append(f"{path.relative_to(repo)}:{node.name} ({size})")
                annotations = [ast.unparse(a.annotation) for a in node.args.args if a.annotation]
                if "engine" in str(path) and any(c in a for a in annotations for c in JOB_CONFIGS):
                    config_takers.append(f"{module_name(repo, path)}.{node.name}")
    print("functions over 60 lines:", long_functions or "none")
    modules = sorted({name.rpartition(".")[0] for name in config_takers})
    print(f"engine functions that take a whole job config: {len(config_takers)} in {len(modules)} modules")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent))
