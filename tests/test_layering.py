"""The layering rule of the style guide: no module imports from a layer to its right."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# layer index per top-level module/package; a module may import only equal-or-lower layers
LAYERS = {
    "groundbench.errors": 0,
    "groundbench.progress": 0,
    "groundbench.bounds": 0,
    "groundbench.device": 0,
    "groundbench.digest": 0,
    "groundbench.types": 1,
    "groundbench.registry": 1,
    "dataset_adapters": 2,
    "groundbench.metrics": 2,
    "groundbench.postprocess": 2,
    "groundbench.attribution": 2,
    "groundbench.synthetic": 2,
    "groundbench.model": 2,
    "groundbench.contrastive": 2,
    "groundbench.methods": 3,
    "groundbench.protocol": 3,
    "groundbench.protocol_schema": 3,
    "groundbench.protocol_scorer": 3,
    "groundbench.model_card": 3,
    "groundbench.probes": 3,
    "groundbench.report": 4,
    "groundbench.overlap": 4,
    "groundbench.evaluate": 5,
    "groundbench.sanity": 5,
    "groundbench.evaluation": 5,
    "groundbench.demo": 7,
    "groundbench.clip_baseline": 7,
    "groundbench.leaderboard": 6,
    "groundbench.human": 6,
    "groundbench.cli": 8,
}


def layer_of(module: str) -> int | None:
    best = None
    for prefix, layer in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, layer)
    return None if best is None else best[1]


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return out


def test_no_upstream_imports():
    bad = []
    for pkg in ("groundbench", "dataset_adapters"):
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            module = ".".join(rel.parts).removesuffix(".__init__")
            own = layer_of(module)
            if own is None:
                continue
            for imp in imports_of(path):
                other = layer_of(imp)
                if other is not None and other > own:
                    bad.append(f"{module} imports {imp}")
    assert not bad, "upstream imports:\n" + "\n".join(bad)


def test_only_cli_imports_click():
    offenders = [
        str(p.relative_to(ROOT))
        for pkg in ("groundbench", "dataset_adapters")
        for p in (ROOT / pkg).rglob("*.py")
        if "click" in {i.split(".")[0] for i in imports_of(p)} and "cli" not in p.parts
    ]
    assert not offenders, offenders


def test_every_module_has_a_layer():
    entry_points = {"groundbench", "groundbench.__main__"}
    unplaced = []
    for pkg in ("groundbench", "dataset_adapters"):
        for path in (ROOT / pkg).rglob("*.py"):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(
                ".__init__"
            )
            if module not in entry_points and layer_of(module) is None:
                unplaced.append(module)
    assert not unplaced, f"modules missing from LAYERS: {unplaced}"
