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


def test_readme_quick_start_is_two_commands_and_ci_runs_the_second():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    assert commands[0].endswith("&& groundbench demo")
    test_command = commands[1].split("&& ", 1)[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_command in ci


def test_readme_python_example_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    # the heatmap-dump example needs a shell around it: tests/e2e/test_readme_dump.py runs it
    outside = (
        readme.split("<!-- heatmap-dump example", 1)[0]
        + readme.split("<!-- end of the heatmap-dump example -->", 1)[1]
    )
    code = outside.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102
    out = namespace["out"]
    assert out.values.shape == (8,) and out.undefined.shape == (8,)
