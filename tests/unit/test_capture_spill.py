"""Large transactions spill to local files (binlake.capture.spill) and still reach the change log
whole, in order, with their commit values, checkpoint last — checked on fake events, no server."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from binlake.capture.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from binlake.capture.records import Layouts
from binlake.capture.sink import ChangeLogSink, LakeWriteError
from binlake.capture.spill import BATCH_ROWS, LOCK_NAME, SpillFolder, read_part, remove_stale
from binlake.capture.transactions import TransactionAssembler
from binlake.changelog import (
    OP_DELETE,
    OP_INSERT,
    OP_UPDATE,
    CommittedTransaction,
    EventChanges,
    list_changelog,
    read_changelog,
    records,
    stamp_commit,
    to_arrow,
)
from binlake.config import ConfigError, parse_config
from binlake.lake import Lake, parse_changelog_name
from binlake.positions import BinlogPosition, make_lsn
from binlake.rules import TableMapping

FILE = "binlog.000007"
MAPPING_RULES = [{"rule-type": "selection", "rule-id": "1", "rule-name": "shop",
                  "object-locator": {"schema-name": "shop", "table-name": "%"}, "rule-action": "include"}]
MAPPING = TableMapping.parse({"rules": MAPPING_RULES})


class FakeLayouts(Layouts):
    def __init__(self) -> None:
        super().__init__(MAPPING)

    def layout_for(self, event: Any) -> Any:
        return self.target(event.schema, event.table)


def fake_records(event: Any, layout: Any, binlog_file: str) -> EventChanges:
    image = [json.dumps({"id": str(i), "v": f"{event.table}-{i}"}) for i in event.ids]
    return EventChanges(
        lsn=make_lsn(binlog_file, event.pos), binlog_file=binlog_file, binlog_pos=event.pos, op=event.op,
        source_schema="shop", source_table=event.table, schema=layout.schema, table=layout.table,
        columns='[{"name":"id"}]', before=None if event.op == OP_INSERT else image,
        after=None if event.op == OP_DELETE else image,
    )


def rows(op: str, table: str, pos: int, *ids: int) -> SimpleNamespace:
    return SimpleNamespace(schema="shop", table=table, pos=pos, ids=ids, op=op)


def big_transaction(asm: TransactionAssembler, gtid: str, first_pos: int, events: int, xid: int) -> None:
    """``events`` row events of 3 rows each on two tables (I, U, D in turn), then the XID."""
    asm.on_gtid(gtid, 0)
    for n in range(events):
        op = (OP_INSERT, OP_UPDATE, OP_DELETE)[n % 3]
        asm.on_rows(rows(op, ("orders", "items")[n % 2], first_pos + 100 * n, 3 * n, 3 * n + 1, 3 * n + 2))
    asm.on_xid(xid, first_pos + 100 * events, 1_700_000_000 + xid)


def small_transaction(asm: TransactionAssembler, gtid: str, pos: int, xid: int) -> None:
    asm.on_gtid(gtid, 0)
    asm.on_rows(rows(OP_INSERT, "orders", pos, 900_000 + xid))
    asm.on_xid(xid, pos + 50, 1_700_000_000 + xid)


def assembler(spill: SpillFolder | None, bound: int) -> TransactionAssembler:
    return TransactionAssembler(FakeLayouts(), BinlogPosition.of(FILE, 4, "0-1-1"), records=fake_records,
                                spill=spill, max_rows_in_memory=bound)


def workload(asm: TransactionAssembler) -> None:
    small_transaction(asm, "0-1-2", 1_000, xid=2)
    big_transaction(asm, "0-1-3", 2_000, events=22, xid=3)        # 66 records
    small_transaction(asm, "0-1-4", 9_000, xid=4)


def flush_all(asm: TransactionAssembler, lake: Lake) -> None:
    batch = asm.pending_batch()
    ChangeLogSink(lake, 1).flush(batch.transactions, batch.position)
    asm.release(batch)


def test_a_spilled_transaction_holds_at_most_the_bound_in_memory(tmp_path: Path) -> None:
    with SpillFolder(tmp_path) as spill:
        asm = assembler(spill, bound=10)
        asm.on_gtid("0-1-3", 0)
        for n in range(20):
            asm.on_rows(rows(OP_UPDATE, "orders", 2_000 + 100 * n, 3 * n, 3 * n + 1, 3 * n + 2))
            assert asm.open is not None and asm.open.rows < 10
        assert len(spill.parts()) == 5 and [p.rows for p in asm.open.spilled] == [12] * 5
        asm.on_xid(3, 4_000, 1_700_000_003)
        (txn,), _ = asm.pending_batch()[:2]
    assert txn.row_count == 60 and txn.events == ()
    assert [(p.first_lsn, p.last_lsn) for p in txn.spilled][:2] == [
        (make_lsn(FILE, 2_000), make_lsn(FILE, 2_300)), (make_lsn(FILE, 2_400), make_lsn(FILE, 2_700))]


def test_spilled_change_log_equals_the_in_memory_one_and_carries_the_commit(tmp_path: Path) -> None:
    reference = Lake(str(tmp_path / "reference"))
    flush_all(_run(workload, assembler(None, bound=10)), reference)
    lake = RecordingLake(str(tmp_path / "lake"))
    with SpillFolder(tmp_path / "spill") as spill:
        asm = assembler(spill, bound=10)
        workload(asm)
        assert asm.spilled_transactions == 1 and asm.spill_files == 5 and len(spill.parts()) == 5
        flush_all(asm, lake)
        assert spill.parts() == []                                   # each part deleted once durable
    got = read_changelog(lake, dedupe=False)
    assert got.equals(read_changelog(reference, dedupe=False))
    big = [r for r in records(got) if r["gtid"] == "0-1-3"]
    assert len(big) == 66
    assert {(r["xid"], r["commit_ts"].timestamp()) for r in big} == {(3, 1_700_000_003)}
    assert [r["after"]["id"] if r["after"] else r["before"]["id"] for r in big] == [str(i) for i in range(66)]
    assert [r["op"] for r in big][::3] == ["I", "U", "D"] * 7 + ["I"]
    keys = [(r["lsn"], r["row_idx"]) for r in records(got)]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    # files: the small txn, the five parts, then the big txn's in-memory rest with the last small txn
    files = list_changelog(lake)
    assert lake.puts == [*files, "_binlake/capture/checkpoint.json"]   # written in lsn order, checkpoint last
    sizes = [read_changelog(lake, [key]).num_rows for key in files]
    assert sizes == [1, 12, 12, 12, 12, 12, 6 + 1]
    ranges = [parse_changelog_name(key) for key in files]
    assert all(a[1] < b[0] for a, b in itertools.pairwise(ranges))
    checkpoint = load_checkpoint(lake)
    assert checkpoint is not None and checkpoint.position == BinlogPosition.of(FILE, 9_050)


class RecordingLake(Lake):
    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.puts: list[str] = []

    def put_bytes(self, key: str, data: bytes, durable: bool = True) -> None:
        self.puts.append(key)
        super().put_bytes(key, data, durable)


def _run(fill: Any, asm: TransactionAssembler) -> TransactionAssembler:
    fill(asm)
    return asm


def test_discarded_open_transactions_delete_their_spill_files(tmp_path: Path) -> None:
    with SpillFolder(tmp_path) as spill:
        asm = assembler(spill, bound=4)
        asm.on_gtid("0-1-3", 0)
        for n in range(5):
            asm.on_rows(rows(OP_INSERT, "orders", 200 + n, n, n + 100))
        assert len(spill.parts()) == 2
        asm.on_gtid("0-1-4", 0)                 # the server crashed before 0-1-3's commit
        assert spill.parts() == []
        for n in range(3):
            asm.on_rows(rows(OP_INSERT, "orders", 300 + n, n, n + 100))
        assert len(spill.parts()) == 1
        asm.discard_open("the binlog connection broke")
        assert spill.parts() == [] and not asm.in_transaction
        asm.on_query("BEGIN", "shop", 400, 1)
        for n in range(3):
            asm.on_rows(rows(OP_INSERT, "orders", 500 + n, n, n + 100))
        asm.on_query("ROLLBACK", "shop", 600, 1)
        assert spill.parts() == [] and asm.pending_batch().transactions == ()


class FailingLake(Lake):
    """Fails the n-th change-log write, like a process killed while writing a spilled transaction."""

    def __init__(self, root: str, fail_at: int) -> None:
        super().__init__(root)
        self.fail_at, self.changelog_writes = fail_at, 0

    def put_bytes(self, key: str, data: bytes, durable: bool = True) -> None:
        if "/changelog/" in key:
            self.changelog_writes += 1
            if self.changelog_writes == self.fail_at:
                raise OSError("disk gone")
        super().put_bytes(key, data, durable)


def test_a_crash_between_spilled_parts_keeps_the_checkpoint_and_a_replay_dedupes(tmp_path: Path) -> None:
    reference = Lake(str(tmp_path / "reference"))
    flush_all(_run(workload, assembler(None, bound=10)), reference)
    lake = FailingLake(str(tmp_path / "lake"), fail_at=4)       # after the small txn and two parts
    save_checkpoint(lake, Checkpoint(BinlogPosition.of(FILE, 4, "0-1-1")))
    with SpillFolder(tmp_path / "spill") as spill:
        asm = assembler(spill, bound=10)
        workload(asm)
        with pytest.raises(LakeWriteError, match="disk gone"):
            flush_all(asm, lake)
    checkpoint = load_checkpoint(lake)
    assert checkpoint is not None and checkpoint.position == BinlogPosition.of(FILE, 4)
    assert len(list_changelog(lake)) == 3
    with SpillFolder(tmp_path / "spill") as spill:                # the restart re-reads from the checkpoint
        asm = assembler(spill, bound=25)                          # (with other part boundaries)
        workload(asm)
        flush_all(asm, lake)
    raw = records(read_changelog(lake, dedupe=False))
    by_key: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for record in raw:
        by_key.setdefault((record["lsn"], record["row_idx"]), []).append(record)
    assert len(raw) > len(by_key)                                 # some records were written twice …
    assert all(all(copy == copies[0] for copy in copies) for copies in by_key.values())   # … identically
    assert read_changelog(lake).equals(read_changelog(reference))
    checkpoint = load_checkpoint(lake)
    assert checkpoint is not None and checkpoint.position == BinlogPosition.of(FILE, 9_050)


def test_stamp_commit_and_to_arrow_refusing_spilled_transactions(tmp_path: Path) -> None:
    event = fake_records(rows(OP_UPDATE, "orders", 700, 1, 2), SimpleNamespace(schema="s", table="t"), FILE)
    with SpillFolder(tmp_path) as spill:
        part = spill.write([event])
        placeholder = read_part(part)
        assert placeholder.column("gtid").null_count == 2 and placeholder.column("xid").null_count == 2
        txn = CommittedTransaction("0-1-9", 42, 1_000_000, (), (part,))
        stamped = stamp_commit(placeholder, txn)
        assert stamped.equals(to_arrow([CommittedTransaction("0-1-9", 42, 1_000_000, (event,))]))
        assert txn.row_count == 2 and txn.in_memory().spilled == ()
        with pytest.raises(ValueError, match="spilled parts"):
            to_arrow([txn])
    with pytest.raises(ValueError, match="schema"):
        stamp_commit(pa.table({"x": [1]}), txn)


def test_spill_folder_is_private_and_removed_and_stale_ones_are_cleaned(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from binlake.capture.spill import SpillFolder; "
         f"f = SpillFolder({str(tmp_path)!r}); print(f.path, flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    other = Path(child.stdout.readline().strip())
    try:
        assert (other / LOCK_NAME).is_file()
        with SpillFolder(tmp_path) as mine:
            assert mine.path != other and other.is_dir()          # a live capture's folder stays
            assert oct(mine.path.stat().st_mode & 0o777) == "0o700"
        assert not mine.path.exists()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    (tmp_path / "unrelated").mkdir()
    assert remove_stale(tmp_path) == [other]                      # the killed one's folder goes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unrelated"]


def test_spill_dir_must_be_local() -> None:
    base: dict[str, Any] = {"lake": {"root": "/tmp/lake"}, "table_mappings": {"rules": MAPPING_RULES}}
    config = parse_config(base, Path("c.yaml"))
    assert config.capture.max_transaction_rows_in_memory == 100_000 and config.capture.spill_dir is None
    with pytest.raises(ConfigError, match=r"capture\.spill_dir"):
        parse_config({**base, "capture": {"spill_dir": "s3a://bucket/spill"}}, Path("c.yaml"))
    with pytest.raises(ConfigError, match=r"capture\.max_transaction_rows_in_memory"):
        parse_config({**base, "capture": {"max_transaction_rows_in_memory": 0}}, Path("c.yaml"))



def test_a_part_larger_than_one_arrow_slice_reads_back_whole_and_in_order(tmp_path: Path) -> None:
    layout = SimpleNamespace(schema="s", table="t")
    events = [fake_records(rows(OP_UPDATE, "orders", 1_000 + n, *range(100 * n, 100 * n + 100)), layout, FILE)
              for n in range(BATCH_ROWS // 100 * 2 + 7)]              # a bit over two slices
    with SpillFolder(tmp_path) as spill:
        part = spill.write(events)
        assert ipc.open_file(part.path).num_record_batches >= 3
        table = read_part(part)
    assert part.rows == table.num_rows == 100 * len(events)
    assert table.equals(to_arrow([CommittedTransaction(None, None, 0, tuple(events))]))
