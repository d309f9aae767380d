"""``groundbench data export``: a protocol's samples as tasks, with no box."""

import json

from click.testing import CliRunner

from groundbench.cli import main


def test_export_writes_one_task_per_sample_without_boxes(tiny, tmp_path):
    protocol, root = tiny
    out = tmp_path / "tasks" / "tasks.jsonl"
    args = ["data", "export", "--protocol", str(protocol), "--data-root", str(root),
            "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote {out}: 6 samples of tiny (")
    tasks = [json.loads(line) for line in out.read_text().splitlines()]
    assert [t["id"] for t in tasks] == [f"tiny/{k:03d}" for k in range(6)]
    assert tasks[1] == {
        "id": "tiny/001", "image": str(root.resolve() / "images" / "1.png"), "width": 40,
        "height": 32, "text": "a thing", "phrase": "thing", "span": [2, 7],
    }  # fmt: skip
    limited = CliRunner().invoke(main, [*args, "--limit", "2"])
    assert limited.exit_code == 0 and len(out.read_text().splitlines()) == 2
    assert not list(out.parent.glob(".*.tmp"))
