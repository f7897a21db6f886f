"""The ``binlake`` command. Each subcommand is a thin wrapper; heavy imports happen inside it
(never pyspark at import time)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="MySQL/MariaDB → Delta Lake replication.")

ConfigOption = typer.Option(..., "--config", "-c", exists=True, dir_okay=False, help="Pipeline YAML file.")


@app.command()
def capture(
    config: Path = ConfigOption,
    verbose: bool = typer.Option(False, "--verbose", help="Debug logging (secrets are masked)."),
) -> None:
    """Run the binlog capture (long-running; SIGTERM/Ctrl-C stop it cleanly)."""
    from binlake.capture.main import main

    raise typer.Exit(main(config, verbose))


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


@app.command()
def status(
    config: Path = ConfigOption,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    source: bool = typer.Option(False, "--source", help="Also ask the source for its binlog end."),
    prometheus: bool = typer.Option(False, "--prometheus",
                                    help="Prometheus text format (e.g. for node_exporter's textfile collector)."),
) -> None:
    """Show the pipeline: per table snapshot state, position applied, lag, counts; the capture's state."""
    from binlake.config import load_config
    from binlake.status import pipeline_status, render_text, source_end_lsn, to_json, to_prometheus

    if as_json and prometheus:
        raise typer.BadParameter("choose one of --json and --prometheus")
    pipeline = load_config(config)
    result = pipeline_status(pipeline, source_end_lsn=source_end_lsn(pipeline) if source else None)
    if prometheus:
        typer.echo(to_prometheus(result), nl=False)
    else:
        typer.echo(to_json(result) if as_json else render_text(result))


@app.command()
def validate(
    config: Path = ConfigOption,
    wait: float = typer.Option(0.0, "--wait", help="Seconds to re-check tables with rows still in flight."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    method: str = typer.Option("checksum", "--method",
                               help="checksum: chunk checksums, rows only where they differ; rows: every row."),
    repair: bool = typer.Option(False, "--repair",
                                help="Resync online exactly the chunks that differ (the merge applies them)."),
    every: str | None = typer.Option(None, "--every", metavar="DURATION",
                                     help="Background verifier: validate every table again DURATION after the "
                                     "last round started (e.g. 30m, 1h) until SIGTERM/Ctrl-C; binlake status "
                                     "shows verified_as_of."),
) -> None:
    """Compare every selected source table with its lake table (runs a local Spark session)."""
    from binlake.validation import main

    raise typer.Exit(main(["--config", str(config), "--wait", str(wait), "--method", method,
                           *(["--json"] if as_json else []), *(["--repair"] if repair else []),
                           *(["--every", every] if every else [])]))


@app.command()
def resync(
    config: Path = ConfigOption,
    table: str = typer.Option(..., "--table", help="Source table as <schema>.<table>."),
    where: str | None = typer.Option(None, "--where",
                                     help="Source predicate: re-read only the chunks holding a matching row."),
    restart: bool = typer.Option(False, "--restart", help="Abandon the table's unfinished resync."),
    wait: float = typer.Option(0.0, "--wait", help="Seconds to wait for the merge to apply every chunk."),
    verbose: bool = typer.Option(False, "--verbose", help="Debug logging (secrets are masked)."),
) -> None:
    """Re-synchronise one table (or the chunks a --where selects) online, exactly once: the capture and
    the merge keep running, the merge applies the re-read chunks (runs a local Spark session)."""
    from binlake.resync.job import main

    raise typer.Exit(main(["--config", str(config), "--table", table, *(["--where", where] if where else []),
                           *(["--restart"] if restart else []), "--wait", str(wait),
                           *(["--verbose"] if verbose else [])]))


@app.command()
def tables(
    config: Path = ConfigOption,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List the selected source tables: lake table, lake path, state (not loaded / loading / loaded /
    joined). Exit status 1 when two tables collide or a name cannot become a lake path."""
    from binlake.config import load_config
    from binlake.tables import list_tables, render_text, to_json

    rows = list_tables(load_config(config))
    typer.echo(to_json(rows) if as_json else render_text(rows))
    if any(row.problem for row in rows):
        raise typer.Exit(1)


catalog_app = typer.Typer(no_args_is_help=True, help="Lake tables by name in a catalog (lake.catalog).")
app.add_typer(catalog_app, name="catalog")


@catalog_app.command("sync")
def catalog_sync(config: Path = ConfigOption) -> None:
    """Register every live lake table in the configured catalog (lake.catalog: hive or glue) and remove
    the names of dropped ones; idempotent. Exit status 1 when something failed or was refused."""
    from binlake.config import load_config
    from binlake.logs import configure_logging
    from binlake.registration.sync import run_sync

    configure_logging(False)
    report = run_sync(load_config(config))
    typer.echo(json.dumps(report.to_json(), indent=1, ensure_ascii=False))
    if not report.ok or report.refused:
        raise typer.Exit(1)


@app.command("config-reference")
def config_reference() -> None:
    """Print the config reference (Markdown), generated from the declared keys."""
    from binlake.config import reference_markdown

    typer.echo(reference_markdown())


@app.command()
def demo(
    seconds: float = typer.Option(30.0, "--seconds", help="How long the workload runs after the full load."),
    s3: bool = typer.Option(False, "--s3", help="Put the lake on a private S3-compatible server (s3proxy)."),
) -> None:
    """Run the embedded demo: local MariaDB + sample data → capture, full load, merge → ./lake
    (or, with --s3, s3a://binlake-demo/lake on a loopback s3proxy)."""
    from binlake.demo.run import main

    raise typer.Exit(main(workload_seconds=seconds, s3=s3))


if __name__ == "__main__":
    app()
