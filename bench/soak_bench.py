"""Soak benchmark: does the pipeline's cost stay flat over time at a steady load?

    .venv/bin/python bench/soak_bench.py [--minutes 30] [--rate 200] [--rows 10000] [--trigger 2]
        [--retention-minutes 5] [--plot soak.png] [--json soak.json] [--csv soak.csv]

Starts a private MariaDB, fills ``soak.items`` (``--rows`` rows), starts the capture
(``capture.flush_seconds: 1``) and runs the full load, then the continuous merge as real processes
(``binlake capture``, ``jobs/full_load.py``, ``streaming/merge.py``), and commits ``--rate``
single-row transactions per second for ``--minutes`` (80% updates, 10% inserts, 10% deletes, so
the table keeps its size and tombstones are written all along). ``changelog.retention_hours`` is
``--retention-minutes`` so the change-log lifecycle turns over many times within the run.

Every 10 s, through the load and the catch-up after it, it samples: files under ``_binlake/``
(all, and by part: change log, merge checkpoint, Delta logs of the metrics and tombstone tables,
the rest), the size in bytes of the merge checkpoint folder, the merge process tree's RSS (driver
and JVM), and the micro-batches the merge logged since (``merge batch N: … in S s``). At the end it
waits until the merge has applied everything, stops it, compares the lake table with the source
row by row and value by value, and prints first-third / last-third means of each series over the
load (flat means a ratio near 1). The checkpoint's series (load and catch-up) start once Spark
keeps its full window of batches (``spark.sql.streaming.minBatchesToRetain``, ``--retain-batches``:
until then its offsets and commits logs fill up by design). Files under ``_binlake/`` as a whole are
compared by their highest count in the first and the last third of the samples taken after
:func:`files_warm_up` (a sawtooth: compared by its peaks). ``--plot`` writes a PNG of the series,
``--json`` the samples and figures, ``--csv`` the samples.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from binlake.capture.checkpoint import load_checkpoint
from binlake.changelog import changelog_files
from binlake.config import PipelineConfig, parse_config
from binlake.devdb import LocalMariaDB, free_port
from binlake.lake import BINLAKE_DIR, MERGE_CHECKPOINT_DIR, MERGE_STATUS_KEY, Lake

ROOT = Path(__file__).resolve().parents[1]
BATCH_LINE = re.compile(r"^(\S+ \S+) INFO binlake\.merge\.batch: merge batch (\d+): (\d+) table\(s\), "
                        r"(\d+) record\(s\) in ([\d.]+) s", re.MULTILINE)
SAMPLE_SECONDS = 10.0
RETAIN_CONF = "spark.sql.streaming.minBatchesToRetain"


def soak_config(db: LocalMariaDB, lake: Path, trigger: float, retention_minutes: float,
                retain_batches: int) -> PipelineConfig:
    return parse_config({
        "name": "soakbench",
        "source": {"host": "127.0.0.1", "port": db.port, "user": "root", "password_env": None, "server_id": 913},
        "lake": {"root": str(lake)},
        "table_mappings": {"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "soak",
                                      "object-locator": {"schema-name": "soak", "table-name": "items"},
                                      "rule-action": "include"}]},
        "capture": {"start": "checkpoint", "flush_seconds": 1.0},
        "merge": {"trigger_seconds": trigger},
        "changelog": {"retention_hours": retention_minutes / 60},
        "spark": {"master": "local[2]", "conf": {"spark.driver.memory": "1g",
                                                 RETAIN_CONF: str(retain_batches)}},
    }, Path("soak-bench.yaml"))


@dataclass
class Sample:
    """One sample, ``t`` seconds after the steady load began."""

    t: float
    files: int                       # everything under _binlake/
    changelog_files: int
    checkpoint_files: int            # _binlake/merge/checkpoint (Spark's offsets, commits, sources)
    checkpoint_kib: float            # their size
    delta_log_files: int             # _delta_log of the metrics and tombstone tables
    rss_mib: float                   # the merge's process tree (Python driver + JVM)


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    batches: list[tuple[float, int, int, float]] = field(default_factory=list)  # (t, batch id, records, s)
    committed: int = 0
    caught_up_after: float = 0.0     # seconds from the end of the load until the merge had applied everything


def folder_kib(folder: Path) -> float:
    """Bytes of every file under ``folder``, in KiB."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1024 if folder.exists() else 0.0


def file_counts(lake_root: Path) -> tuple[int, int, int, int]:
    total = changelog = checkpoint = delta = 0
    for folder, _, names in os.walk(lake_root / BINLAKE_DIR):
        rel = Path(folder).relative_to(lake_root).as_posix()
        total += len(names)
        if rel.startswith(f"{BINLAKE_DIR}/changelog"):
            changelog += len(names)
        elif rel.startswith(f"{BINLAKE_DIR}/merge/checkpoint"):
            checkpoint += len(names)
        elif "/_delta_log" in rel:
            delta += len(names)
    return total, changelog, checkpoint, delta


def tree_rss_mib(pgid: int) -> float:
    """Resident memory of every process in process group ``pgid`` (from /proc)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) != pgid:   # field 5 of stat: the process group
                continue
            for line in Path(f"/proc/{entry}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total / 1024


class Workload:
    """``rate`` single-row autocommit transactions per second on ``soak.items``."""

    def __init__(self, db: LocalMariaDB, rate: float, rows: int) -> None:
        self.db, self.rate, self.next_id = db, rate, rows + 1
        self.committed = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        rng = random.Random(7)
        try:
            with self.db.connect("soak", autocommit=True) as conn, conn.cursor() as cur:
                began = time.monotonic()
                while not self.stop.is_set():
                    pause = began + self.committed / self.rate - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                    roll = rng.random()
                    if roll < 0.1:
                        cur.execute("INSERT INTO items VALUES (%s, %s, %s)", (self.next_id, 0, f"new {self.next_id}"))
                        self.next_id += 1
                    elif roll < 0.2:
                        cur.execute("DELETE FROM items WHERE id = %s", (rng.randint(1, self.next_id - 1),))
                    else:
                        cur.execute("UPDATE items SET v = v + 1, note = %s WHERE id = %s",
                                    (f"u{self.committed}", rng.randint(1, self.next_id - 1)))
                    self.committed += 1
        except BaseException as exc:
            self.error = exc


def spawn(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def stop(process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def master_lsn(db: LocalMariaDB) -> int:
    from binlake.positions import BinlogPosition

    file, pos = db.execute("SHOW MASTER STATUS")[0][:2]
    return BinlogPosition.of(str(file), int(str(pos))).lsn


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise TimeoutError(f"timed out waiting for {what}")


def merged_lsn(lake: Lake) -> int:
    try:
        return int(json.loads(lake.get_bytes(MERGE_STATUS_KEY)).get("lsn") or 0)
    except FileNotFoundError:
        return 0


def logged_batches(log: Path, began: float) -> list[tuple[float, int, int, float]]:
    """``(seconds after ``began`` (epoch), batch id, records, batch seconds)`` of every batch the merge logged."""
    found = []
    for m in BATCH_LINE.finditer(log.read_text(errors="replace")):
        when = datetime.datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        found.append((round(when - began, 1), int(m[2]), int(m[4]), float(m[5])))
    return found


def thirds(values: list[float]) -> tuple[float, float]:
    """Mean of the first and of the last third of ``values``."""
    third = max(1, len(values) // 3)
    return statistics.fmean(values[:third]), statistics.fmean(values[-third:])


def compare(config: PipelineConfig, db: LocalMariaDB) -> tuple[int, int]:
    """(rows in the source, rows that differ between lake and source, both directions)."""
    from binlake.spark import build_session

    spark = build_session(config, "soak-check")
    try:
        lake = Lake.from_config(config)
        lake_rows = {tuple(r) for r in spark.read.format("delta").load(lake.uri("soak/items"))
                     .select("id", "v", "note").collect()}
    finally:
        spark.stop()
    source_rows = {tuple(r) for r in db.execute("SELECT id, v, note FROM soak.items")}
    return len(source_rows), len(lake_rows ^ source_rows)


def soak(db: LocalMariaDB, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    db.execute("CREATE DATABASE soak")
    db.execute("CREATE TABLE items (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(64))", "soak")
    db.execute(f"INSERT INTO items SELECT seq, 0, CONCAT('row ', seq) FROM seq_1_to_{args.rows}", "soak")
    config = soak_config(db, workdir / "lake", args.trigger, args.retention_minutes, args.retain_batches)
    config_path = workdir / "soak.yaml"
    config_path.write_text(yaml.safe_dump(json.loads(config.model_dump_json())))
    lake = Lake.from_config(config)
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    capture = spawn([sys.executable, "-m", "binlake.cli", "capture", "--config", str(config_path)],
                    logs / "capture.log")
    merge: subprocess.Popen[bytes] | None = None
    run = Run()
    try:
        end = master_lsn(db)
        wait_until(lambda: (c := load_checkpoint(lake)) is not None and c.position.lsn >= end, 120, "the capture")
        subprocess.run([sys.executable, str(ROOT / "jobs" / "full_load.py"), "--config", str(config_path)],
                       cwd=ROOT, check=True, stdout=(logs / "full_load.log").open("ab"), stderr=subprocess.STDOUT)
        merge = spawn([sys.executable, str(ROOT / "streaming" / "merge.py"), "--config", str(config_path)],
                      logs / "merge.log")
        workload = Workload(db, args.rate, args.rows)
        workload.thread.start()
        began, wall = time.monotonic(), time.time()
        print(f"steady load: {args.rate:g} transactions/s for {args.minutes:g} min")
        def sample() -> None:
            time.sleep(SAMPLE_SECONDS)
            if workload.error is not None:
                raise workload.error
            if merge is None or merge.poll() is not None or capture.poll() is not None:
                raise RuntimeError(f"a process stopped early; see {logs}")
            t = time.monotonic() - began
            total, changelog, checkpoint, delta = file_counts(workdir / "lake")
            kib = folder_kib(workdir / "lake" / MERGE_CHECKPOINT_DIR)
            run.samples.append(Sample(round(t, 1), total, changelog, checkpoint, round(kib, 1), delta,
                                      round(tree_rss_mib(merge.pid), 1)))
            last = run.samples[-1]
            print(f"  t={t:6.0f}s  files {last.files:6d} (change log {last.changelog_files:5d}, merge checkpoint "
                  f"{last.checkpoint_files:4d}: {last.checkpoint_kib:6.0f} KiB)  "
                  f"merge RSS {last.rss_mib:7.0f} MiB  batches so far {len(logged_batches(logs / 'merge.log', wall))}",
                  flush=True)

        while time.monotonic() - began < args.minutes * 60:
            sample()
        workload.stop.set()
        workload.thread.join(timeout=30)
        run.committed = workload.committed
        end = master_lsn(db)
        wait_until(lambda: (c := load_checkpoint(lake)) is not None and c.position.lsn >= end, 600, "the capture")
        last_record = max((f.last for f in changelog_files(lake)), default=0)
        deadline = time.monotonic() + 1800
        while merged_lsn(lake) < last_record:  # sampled on: the catch-up is plotted too
            if time.monotonic() > deadline:
                raise TimeoutError("timed out waiting for the merge to catch up")
            sample()
        run.caught_up_after = round(time.monotonic() - began - args.minutes * 60, 1)
        run.batches = logged_batches(logs / "merge.log", wall)
    finally:
        if merge is not None:
            stop(merge)
        stop(capture)
    rows, differ = compare(config, db)
    return summary(run, rows, differ, args)


def summary(run: Run, rows: int, differ: int, args: argparse.Namespace) -> dict[str, Any]:
    durations = [b[3] for b in run.batches]  # every batch up to the catch-up
    loaded = [s for s in run.samples if s.t <= args.minutes * 60]  # the steady load (then the catch-up)
    full = next((b[0] for b in run.batches if b[1] >= args.retain_batches), None)  # Spark's window is full
    kept = [s for s in run.samples if full is not None and s.t >= full]  # load and catch-up
    series = {"batch seconds": durations,
              "files under _binlake/": [float(s.files) for s in loaded],
              "change-log files": [float(s.changelog_files) for s in loaded],
              "Delta log files (metrics, tombstones)": [float(s.delta_log_files) for s in loaded],
              "merge checkpoint files": [float(s.checkpoint_files) for s in kept],
              "merge checkpoint KiB": [s.checkpoint_kib for s in kept],
              "merge RSS MiB": [s.rss_mib for s in loaded]}
    ratios = {name: thirds(values) for name, values in series.items() if values}
    warm_up = files_warm_up(run, args)
    settled = [float(s.files) for s in loaded if s.t >= warm_up]
    files_max = (max_thirds(settled) if len(settled) >= 3 else None)
    print()
    print(f"{run.committed:,} transactions in {args.minutes:g} min ({run.committed / (args.minutes * 60):,.0f}/s), "
          f"{len(run.batches)} micro-batches")
    for name, (first, last) in ratios.items():
        print(f"{name:<40} first third {first:9.1f}   last third {last:9.1f}   ratio {last / max(first, 1e-9):5.2f}")
    if files_max is not None:
        label = f"files under _binlake/, max after {warm_up / 60:.1f} min"
        print(f"{label:<40} first third {files_max[0]:9.0f}   last third {files_max[1]:9.0f}   "
              f"ratio {files_max[1] / max(files_max[0], 1):5.2f}")
    print(f"the merge had applied everything {run.caught_up_after:.0f} s after the load stopped")
    print(f"lake vs source: {rows:,} source rows, {differ} differing row(s) (both directions)")
    return {"args": vars(args) | {"plot": str(args.plot), "json": str(args.json), "csv": str(args.csv),
                                  "workdir": str(args.workdir)},
            "committed": run.committed, "caught_up_after": run.caught_up_after, "source_rows": rows,
            "differing_rows": differ,
            "samples": [asdict(s) for s in run.samples], "batches": run.batches,
            "thirds": {name: list(v) for name, v in ratios.items()},
            "files_warm_up_seconds": warm_up, "files_max_thirds": None if files_max is None else list(files_max)}


def files_warm_up(run: Run, args: argparse.Namespace) -> float:
    """Seconds into the load after which the file count under ``_binlake/`` should be flat: once the
    merge keeps up (its first batch under 5 triggers, after the join), the longest window anything is
    kept for — binlake's own tables keep removed files and log entries
    :data:`~binlake.merge.deltars.INTERNAL_RETENTION` (10 min), the change log ``--retention-minutes``
    — plus two maintenance rounds (``merge.optimize_every_batches`` = 50 batches of one trigger)."""
    from binlake.merge.deltars import INTERNAL_RETENTION

    keeps_up = float(next((b[0] for b in run.batches if b[3] < 5 * args.trigger), args.minutes * 60))
    window = max(INTERNAL_RETENTION.total_seconds(), args.retention_minutes * 60)
    return float(keeps_up + window + 2 * 50 * args.trigger)


def max_thirds(values: list[float]) -> tuple[float, float]:
    """Maximum of the first and of the last third of ``values`` (a sawtooth's peaks)."""
    third = max(1, len(values) // 3)
    return max(values[:third]), max(values[-third:])


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples, batches = result["samples"], result["batches"]
    minutes = [s["t"] / 60 for s in samples]
    fig, (batch_ax, files_ax, checkpoint_ax, rss_ax) = plt.subplots(4, 1, figsize=(10, 11), sharex=True)
    for ax in (batch_ax, files_ax, checkpoint_ax, rss_ax):
        ax.axvline(result["args"]["minutes"], color="grey", linestyle="--", linewidth=0.8)  # the load stops
    batch_ax.plot([b[0] / 60 for b in batches], [b[3] for b in batches], ".", markersize=3)
    batch_ax.set_ylabel("micro-batch (s)")
    batch_ax.set_title(f"Soak: {result['args']['rate']:g} transactions/s, capture.flush_seconds 1, "
                       f"change-log retention {result['args']['retention_minutes']:g} min")
    parts = (("files", "all under _binlake/"), ("changelog_files", "change log"),
             ("delta_log_files", "Delta logs (metrics, tombstones)"), ("checkpoint_files", "merge checkpoint"))
    for key, label in parts:
        files_ax.plot(minutes, [s[key] for s in samples], label=label)
    files_ax.set_ylabel("files")
    files_ax.legend()
    checkpoint_ax.plot(minutes, [s["checkpoint_kib"] for s in samples], color="tab:green")
    checkpoint_ax.set_ylabel("merge checkpoint (KiB)")
    rss_ax.plot(minutes, [s["rss_mib"] for s in samples], color="tab:red")
    rss_ax.set_ylabel("merge RSS (MiB)")
    rss_ax.set_xlabel("minutes since the steady load began (dashed: it stops; then the catch-up)")
    for ax in (batch_ax, files_ax, checkpoint_ax, rss_ax):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    print(f"plot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="duration of the steady load")
    parser.add_argument("--rate", type=float, default=200.0, help="single-row transactions per second")
    parser.add_argument("--rows", type=int, default=10_000, help="rows of the table at the start")
    parser.add_argument("--trigger", type=float, default=2.0, help="merge.trigger_seconds")
    parser.add_argument("--retention-minutes", type=float, default=5.0, help="changelog.retention_hours, in minutes")
    parser.add_argument("--plot", type=Path, default=Path("soak.png"))
    parser.add_argument("--retain-batches", type=int, default=100,
                        help=f"{RETAIN_CONF} of the merge (Spark's default: 100)")
    parser.add_argument("--json", type=Path, default=None, help="write the samples and figures here")
    parser.add_argument("--csv", type=Path, default=None, help="write the samples here (one row per 10 s)")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder, removed after")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="binlake-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        with LocalMariaDB(workdir / "db" / "data", free_port()) as db:
            result = soak(db, workdir, args)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    plot(result, args.plot)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1))
    if args.csv is not None:
        write_csv(result, args.csv)


def write_csv(result: dict[str, Any], path: Path) -> None:
    """The samples, one row each, and the micro-batches since the previous sample (count, mean seconds)."""
    batches = result["batches"]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        names = list(result["samples"][0]) if result["samples"] else []
        writer.writerow([*names, "batches", "mean_batch_seconds"])
        previous = float("-inf")
        for sample in result["samples"]:
            durations = [b[3] for b in batches if previous < b[0] <= sample["t"]]
            writer.writerow([*sample.values(), len(durations),
                             round(statistics.fmean(durations), 2) if durations else ""])
            previous = sample["t"]
    print(f"csv: {path}")


if __name__ == "__main__":
    main()
