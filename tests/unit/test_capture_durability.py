"""The checkpoint never passes what is not durable: failed change-log writes (a real local lake
whose change-log folder is broken, or a storage that raises S3/OS errors) leave the checkpoint
where it was and the transactions pending, on the flush, failure and stop paths; transient errors
are retried with logged back-off, persistent ones are not; the memory bound counts bytes."""

from __future__ import annotations

import errno
import json
import logging
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from binlake.capture.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from binlake.capture.records import Layouts
from binlake.capture.runner import CaptureRunner
from binlake.capture.sink import ChangeLogSink, FlushPolicy, LakeWriteError
from binlake.capture.spill import SpillFolder
from binlake.capture.status import local_status_path, read_status
from binlake.capture.transactions import TransactionAssembler
from binlake.changelog import OP_INSERT, RECORD_OVERHEAD, EventChanges, approx_bytes, list_changelog, read_changelog
from binlake.config import parse_config
from binlake.lake import CHANGELOG_DIR, Lake, LocalStorage
from binlake.positions import BinlogPosition, make_lsn
from binlake.retry import LakeError, RetryPolicy, is_transient
from binlake.rules import TableMapping

FILE = "binlog.000005"
START = BinlogPosition.of(FILE, 4, "0-1-1")
RULES = {"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "shop",
                    "object-locator": {"schema-name": "shop", "table-name": "%"}, "rule-action": "include"}]}


class Layouts1(Layouts):
    def __init__(self) -> None:
        super().__init__(TableMapping.parse(RULES))

    def layout_for(self, event: Any) -> Any:
        return self.target("shop", "t")


def fake_records(event: Any, layout: Any, binlog_file: str) -> EventChanges:
    images = [json.dumps({"id": str(i), "v": "x" * event.width}) for i in event.ids]
    return EventChanges(make_lsn(binlog_file, event.pos), binlog_file, event.pos, OP_INSERT, "shop", "t",
                        layout.schema, layout.table, '[{"name":"id"},{"name":"v"}]', None, images)


def insert(asm: TransactionAssembler, gtid: str, pos: int, *ids: int, width: int = 3) -> None:
    """One committed transaction: an INSERT event of ``ids`` at ``pos``, XID at ``pos + 50``."""
    asm.on_gtid(gtid, 0)
    asm.on_rows(SimpleNamespace(pos=pos, ids=ids, width=width))
    asm.on_xid(int(gtid.rsplit("-", 1)[1]), pos + 50, 1_700_000_000)


def assembler(spill: SpillFolder | None = None, max_rows_in_memory: int = 100_000,
              max_bytes_in_memory: int = 1 << 28) -> TransactionAssembler:
    return TransactionAssembler(Layouts1(), START, records=fake_records, spill=spill,
                                max_rows_in_memory=max_rows_in_memory, max_bytes_in_memory=max_bytes_in_memory)


def break_changelog(root: Path) -> Path:
    """Replace the lake's change-log folder by a regular file (writes then fail with an OS error)."""
    folder = root / CHANGELOG_DIR
    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("not a folder")
    return folder


def repair_changelog(root: Path) -> None:
    (root / CHANGELOG_DIR).unlink()


# ------------------------------------------------------------------ the sink and the flush path


def test_a_failed_write_keeps_the_checkpoint_and_poisons_the_sink(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path), retry=RetryPolicy(retries=0))
    save_checkpoint(lake, Checkpoint(START))
    asm = assembler()
    insert(asm, "0-1-2", 100, 1, 2)
    folder = break_changelog(tmp_path)
    sink = ChangeLogSink(lake, 1)
    batch = asm.pending_batch()
    with pytest.raises(LakeWriteError, match=str(folder)) as failed:
        sink.flush(batch.transactions, batch.position)
    assert "checkpoint stays at binlog.000005:4" in str(failed.value)
    assert isinstance(failed.value.__cause__, LakeError) and not failed.value.__cause__.transient
    assert load_checkpoint(lake) == Checkpoint(START) and asm.pending_batch() == batch   # nothing released
    repair_changelog(tmp_path)
    with pytest.raises(LakeWriteError, match="earlier failure"):   # the lake works again, the sink does not
        sink.flush((), asm.position)
    assert load_checkpoint(lake) == Checkpoint(START) and list_changelog(lake) == []
    fresh = ChangeLogSink(lake, 1)                                # a restart: the same pending, written whole
    fresh.flush(batch.transactions, batch.position)
    asm.release(batch)
    assert [json.loads(image)["id"] for image in read_changelog(lake).column("after").to_pylist()] == ["1", "2"]
    assert load_checkpoint(lake).position == BinlogPosition.of(FILE, 150)   # type: ignore[union-attr]


def runner_for(tmp_path: Path, retries: int = 0) -> tuple[CaptureRunner, Lake]:
    config = parse_config({"lake": {"root": str(tmp_path / "lake"), "retries": retries}, "table_mappings": RULES,
                           "capture": {"spill_dir": str(tmp_path / "spill")}}, tmp_path / "p.yaml")
    runner = CaptureRunner(config)
    runner.assembler = assembler()
    save_checkpoint(runner.lake, Checkpoint(START, 1))
    runner.sink = ChangeLogSink(runner.lake, 1)
    return runner, runner.lake


def test_the_failure_path_never_checkpoints_after_a_write_error(tmp_path: Path) -> None:
    """The reported bug: flush fails → _fail → _flush again used to checkpoint with nothing written."""
    runner, lake = runner_for(tmp_path)
    asm = runner.assembler
    assert asm is not None
    for n in range(20):
        insert(asm, f"0-1-{n + 2}", 100 + 100 * n, n)
    folder = break_changelog(tmp_path / "lake")
    with pytest.raises(LakeWriteError) as failed:
        runner._flush()
    runner._fail(failed.value)
    assert load_checkpoint(lake) == Checkpoint(START, 1)
    assert len(asm.pending) == 20 and asm.pending_rows == 20
    status = read_status(lake, local_status_path(runner.config))
    assert status is not None and status["state"] == "failed" and str(folder) in status["error"]
    assert status["checkpoint"]["pos"] == 4
    runner.stopping = True
    runner._stop()                                                # a stop after that writes nothing either
    assert load_checkpoint(lake) == Checkpoint(START, 1) and list_changelog(lake) == []


def test_a_stop_whose_final_flush_fails_exits_failed_with_the_checkpoint_unmoved(tmp_path: Path) -> None:
    runner, lake = runner_for(tmp_path)
    assert runner.assembler is not None
    insert(runner.assembler, "0-1-2", 100, 1)
    break_changelog(tmp_path / "lake")
    with pytest.raises(LakeWriteError):
        runner._stop()
    assert load_checkpoint(lake) == Checkpoint(START, 1)
    assert runner.metrics.state == "failed"


def test_a_stop_during_a_retry_wait_writes_nothing_more_and_keeps_the_checkpoint(tmp_path: Path) -> None:
    runner, lake = runner_for(tmp_path, retries=5)
    assert runner.assembler is not None and runner.sink is not None
    lake.storage = FlakyStorage(tmp_path / "lake", [TimeoutError("slow")] * 100)
    insert(runner.assembler, "0-1-2", 100, 1)
    runner.stopping = True                                        # SIGTERM arrived during the write
    runner._stop()                                                # the retry wait ends at once
    assert runner.metrics.state == "stopped" and runner.sink.failure is not None
    assert load_checkpoint(lake) == Checkpoint(START, 1) and len(runner.assembler.pending) == 1


def test_spill_files_stay_until_their_change_log_files_and_checkpoint_are_durable(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"), retry=RetryPolicy(retries=0))
    with SpillFolder(tmp_path / "spill") as spill:
        asm = assembler(spill, max_rows_in_memory=2)
        asm.on_gtid("0-1-2", 0)
        for n in range(5):
            asm.on_rows(SimpleNamespace(pos=100 + 10 * n, ids=(2 * n, 2 * n + 1), width=3))
        asm.on_xid(2, 200, 1)
        assert len(spill.parts()) == 5
        break_changelog(tmp_path / "lake")
        batch = asm.pending_batch()
        with pytest.raises(LakeWriteError):
            ChangeLogSink(lake, 1).flush(batch.transactions, batch.position)
        assert len(spill.parts()) == 5                             # still there: the flush can be redone
        repair_changelog(tmp_path / "lake")
        ChangeLogSink(lake, 1).flush(batch.transactions, batch.position)
        assert len(spill.parts()) == 5                             # the sink never deletes them …
        asm.release(batch)
        assert spill.parts() == [] and asm.pending == []           # … the release does, once durable
    assert read_changelog(lake).num_rows == 10


# ------------------------------------------------------------------ retries


class FlakyStorage(LocalStorage):
    """A real local storage whose first change-log writes raise the given errors."""

    def __init__(self, root: Path, errors: list[BaseException]) -> None:
        super().__init__(root)
        self.errors = errors

    def put_bytes(self, key: str, data: bytes, durable: bool = True) -> None:
        if "/changelog/" in key and self.errors:
            raise self.errors.pop(0)
        super().put_bytes(key, data, durable)


def flaky_lake(tmp_path: Path, errors: list[BaseException], retries: int = 5) -> tuple[Lake, list[float]]:
    waits: list[float] = []
    lake = Lake(str(tmp_path), retry=RetryPolicy(retries=retries, max_seconds=2.0, sleep=waits.append))
    lake.storage = FlakyStorage(tmp_path, errors)
    return lake, waits


def s3_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "PutObject")


def test_transient_lake_errors_are_retried_with_logged_backoff(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                               ) -> None:
    errors: list[BaseException] = [s3_error("SlowDown", 503), EndpointConnectionError(endpoint_url="http://s3"),
                                   ConnectionResetError(errno.ECONNRESET, "reset"), s3_error("InternalError", 500)]
    lake, waits = flaky_lake(tmp_path, errors)
    asm = assembler()
    insert(asm, "0-1-2", 100, 1)
    batch = asm.pending_batch()
    with caplog.at_level(logging.WARNING, logger="binlake.retry"):
        ChangeLogSink(lake, 1).flush(batch.transactions, batch.position)
    assert waits == [0.5, 1.0, 2.0, 2.0]                           # doubling, capped at max_seconds
    assert len(caplog.records) == 4 and all(tmp_path.as_posix() + "/_binlake/changelog/" in r.getMessage()
                                            for r in caplog.records)
    assert "SlowDown (HTTP 503)" in caplog.records[0].getMessage()
    assert read_changelog(lake).num_rows == 1 and load_checkpoint(lake).position.pos == 150  # type: ignore[union-attr]


def test_retries_are_bounded_and_persistent_errors_are_not_retried(tmp_path: Path) -> None:
    lake, waits = flaky_lake(tmp_path / "a", [TimeoutError("slow")] * 4, retries=3)
    with pytest.raises(LakeError, match="still failing after 3 retries") as exhausted:
        lake.put_bytes(f"{CHANGELOG_DIR}/x.parquet", b"x")
    assert exhausted.value.transient and exhausted.value.attempts == 4 and len(waits) == 3
    assert exhausted.value.uri == f"{tmp_path}/a/{CHANGELOG_DIR}/x.parquet"
    lake, waits = flaky_lake(tmp_path / "b", [s3_error("AccessDenied", 403)])
    with pytest.raises(LakeError, match=r"AccessDenied .*not retried"):
        lake.put_bytes(f"{CHANGELOG_DIR}/x.parquet", b"x")
    assert waits == []


def test_reads_of_missing_objects_and_caller_errors_are_not_lake_failures(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    with pytest.raises(FileNotFoundError):
        lake.get_bytes("_binlake/capture/checkpoint.json")
    with pytest.raises(ValueError, match="relative"):
        lake.put_bytes("../escape", b"")
    (tmp_path / "_binlake").write_text("a file")
    with pytest.raises(LakeError, match=r"read .*_binlake/capture/checkpoint.json failed: NotADirectoryError"):
        lake.get_bytes("_binlake/capture/checkpoint.json")


@pytest.mark.parametrize(("error", "transient"), [
    (s3_error("SlowDown", 503), True),
    (s3_error("ServiceUnavailable", 503), True),
    (s3_error("Throttling", 400), True),
    (s3_error("RequestTimeout", 400), True),
    (s3_error("Whatever", 502), True),
    (s3_error("TooManyRequests", 429), True),
    (s3_error("AccessDenied", 403), False),
    (s3_error("NoSuchBucket", 404), False),
    (s3_error("InvalidAccessKeyId", 403), False),
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), True),
    (ConnectionClosedError(endpoint_url="http://127.0.0.1:1"), True),
    (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), True),
    (NoCredentialsError(), False),
    (OSError(errno.EINTR, "interrupted"), True),
    (OSError(errno.EAGAIN, "try again"), True),
    (ConnectionResetError(errno.ECONNRESET, "reset"), True),
    (TimeoutError("timed out"), True),
    (OSError(errno.ENOSPC, "No space left on device"), False),
    (PermissionError(errno.EACCES, "Permission denied"), False),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory"), False),
    (OSError(errno.EROFS, "Read-only file system"), False),
    (OSError(errno.EIO, "I/O error"), False),
    (OSError("no errno"), False),
])
def test_transient_or_persistent(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


# ------------------------------------------------------------------ bytes, not only rows


def test_an_open_transaction_spills_on_bytes_before_its_row_bound(tmp_path: Path) -> None:
    with SpillFolder(tmp_path) as spill:
        asm = assembler(spill, max_rows_in_memory=1_000, max_bytes_in_memory=10_000)
        asm.on_gtid("0-1-2", 0)
        for n in range(12):                                         # rows of ~3,000 bytes each
            asm.on_rows(SimpleNamespace(pos=100 + 10 * n, ids=(n,), width=3_000))
            assert asm.open is not None and asm.open.bytes < 10_000
        assert asm.open is not None and [p.rows for p in asm.open.spilled] == [4, 4, 4]
        assert len(spill.parts()) == 3
        asm.on_xid(2, 300, 1)
        assert asm.pending_rows == 12 and asm.pending_bytes == 0   # spilled records hold no memory


def test_pending_bytes_are_counted_and_bound_the_flush() -> None:
    asm = assembler()
    insert(asm, "0-1-2", 100, 1, 2, width=500)
    event = asm.pending[0].events[0]
    assert approx_bytes(event) == sum(map(len, event.after or [])) + 2 * RECORD_OVERHEAD
    assert asm.pending_bytes == approx_bytes(event) > 1_000
    policy = FlushPolicy(max_rows=1_000, max_seconds=60, max_bytes=1_000)
    assert policy.due(asm.pending_rows, 0.0, None, 1.0, asm.pending_bytes)
    assert not policy.due(asm.pending_rows, 0.0, None, 1.0, 999)
    batch = asm.pending_batch()
    asm.release(batch)
    assert asm.pending_bytes == 0 and asm.pending_rows == 0
    with pytest.raises(RuntimeError, match="oldest pending"):
        asm.release(batch)
