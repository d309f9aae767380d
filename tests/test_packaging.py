"""The hand-written package list in pyproject.toml covers every package of the source tree."""

from __future__ import annotations

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed():
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for top in ("groundbench", "dataset_adapters")
        for p in (ROOT / top).rglob("__init__.py")
    }
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert "groundbench.shipped_protocols" in listed


def test_package_data_globs_match_files():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]
    assert data["groundbench.shipped_protocols"] == ["*.yaml"] and any(
        (ROOT / "protocols").glob("*.yaml")
    )
    assert data["groundbench.model"] == ["configs/*.yaml"] and any(
        (ROOT / "groundbench/model/configs").glob("*.yaml")
    )
