"""``groundbench human prepare|serve|export|analyze``: human studies of heatmaps."""

from __future__ import annotations

import click


@click.group("human")
def human() -> None:
    """Run a blinded human study of heatmaps and analyse it (docs/human.md)."""


@human.command("prepare")
@click.argument("study_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="New study folder.")
def prepare(study_file: str, out: str) -> None:
    """Render the maps of STUDY_FILE's methods and write the study folder OUT."""
    from groundbench.human.prepare import prepare as run

    folder = run(study_file, out)
    click.echo(f"prepared {folder} (tokens in {folder / 'tokens.json'}, mode 0600)")


@human.command("serve")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8765, show_default=True, help="Port (0 picks a free one).")
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback --host (a lab network).")
def serve(folder: str, host: str, port: int, allow_remote: bool) -> None:
    """Serve the study page of FOLDER; prints one URL per annotator. Ctrl-C stops."""
    from groundbench.human.server import is_loopback, make_server

    server, app = make_server(folder, host, port, allow_remote)
    if not is_loopback(host):
        click.echo(
            f"warning: serving on {host}, reachable from other machines; anyone with a URL "
            "below can answer as that annotator (plain HTTP, no TLS)",
            err=True,
        )
    for name, url in app.urls(host, server.server_address[1]).items():
        click.echo(f"{name}\t{url}", nl=True)
    click.get_text_stream("stdout").flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        app.store.close()


@human.command("export")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="JSONL file to write.")
def export(folder: str, out: str) -> None:
    """Write every judgement of FOLDER as canonical sorted JSONL, and OUT.sha256."""
    from pathlib import Path

    from groundbench.human.analyze import export_jsonl

    data, digest = export_jsonl(folder)
    path = Path(out)
    path.write_bytes(data)
    path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n", encoding="utf-8")
    click.echo(f"{digest}  {path}")


@human.command("analyze")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Report folder.")
@click.option("--resamples", default=1000, show_default=True, help="Bootstrap resamples.")
def analyze(folder: str, out: str, resamples: int) -> None:
    """Write report.json, report.md and bradley_terry.png for the judgements in FOLDER."""
    from groundbench.human.analyze import analyze as run

    path = run(folder, out, resamples)
    click.echo(f"wrote {path / 'report.md'}")


COMMANDS = [human]
