"""The ``binlake`` command. Each subcommand is a thin wrapper; heavy imports happen inside it
(never pyspark at import time)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="MySQL/MariaDB → Delta Lake replication.")

ConfigOption = typer.Option(..., "--config", "-c", exists=True, dir_okay=False, help="Pipeline YAML file.")


@app.command()
def capture(config: Path = ConfigOption) -> None:
    """Run the binlog capture (long-running; SIGTERM/Ctrl-C stop it cleanly)."""
    from binlake.capture.main import main

    raise typer.Exit(main(config))


@app.command("capture-status")
def capture_status(config: Path = ConfigOption, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show the capture's position, lag, rates, files written and checkpoint."""
    from binlake.capture.report import status_report
    from binlake.config import load_config

    report = status_report(load_config(config))
    typer.echo(json.dumps(report, indent=2) if as_json else report_text(report))


def report_text(report: dict[str, object]) -> str:
    """Human-readable lines of a capture status report."""
    return "\n".join(f"{key:>22}: {value}" for key, value in report.items())


if __name__ == "__main__":
    app()
