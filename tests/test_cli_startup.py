"""`groundbench --help` and `groundbench synth` start without importing torch or pandas."""

from __future__ import annotations

import subprocess
import sys


def test_cli_import_leaves_heavy_libraries_to_the_commands():
    code = (
        "import sys, groundbench.cli; "
        "print(sorted(m for m in ('torch', 'pandas', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_adapter_is_a_one_line_error():
    from click.testing import CliRunner

    from groundbench.cli import main

    result = CliRunner().invoke(main, ["data", "check", "nosuch", "--root", "."])
    assert result.exit_code == 1
    assert "unknown adapters 'nosuch'. Valid names: " in result.output
