"""The snapshot method choice for both server kinds, and the watermark session-init statement."""

from __future__ import annotations

import pytest

from binlake.config import FullLoadConfig, SnapshotMethod
from binlake.positions import BinlogPosition
from binlake.snapshot.reading import JdbcSource, watermark_session_init, with_watermark
from binlake.snapshot.watermark import choose_method
from binlake.source import SourceError


def test_default_is_auto() -> None:
    assert FullLoadConfig().snapshot_method is SnapshotMethod.AUTO


@pytest.mark.parametrize(("setting", "mariadb_position", "chosen"), [
    (SnapshotMethod.AUTO, True, SnapshotMethod.MARIADB),       # MariaDB / Percona: the exact position
    (SnapshotMethod.AUTO, False, SnapshotMethod.WATERMARK),    # MySQL, Aurora, RDS
    (SnapshotMethod.WATERMARK, True, SnapshotMethod.WATERMARK),  # forced (how the tests run it on MariaDB)
    (SnapshotMethod.WATERMARK, False, SnapshotMethod.WATERMARK),
    (SnapshotMethod.MARIADB, True, SnapshotMethod.MARIADB),
])
def test_choice(setting: SnapshotMethod, mariadb_position: bool, chosen: SnapshotMethod) -> None:
    assert choose_method(setting, mariadb_position) is chosen


def test_mariadb_forced_on_mysql_is_refused_naming_the_setting() -> None:
    with pytest.raises(SourceError, match=r"full_load.snapshot_method is mariadb.*auto"):
        choose_method(SnapshotMethod.MARIADB, False)


def test_watermark_session_labels_the_snapshot_with_the_low_watermark() -> None:
    low = BinlogPosition.of("mysql-bin-changelog.000123", 4567, epoch=2)
    statement = watermark_session_init(low)
    assert statement.index("START TRANSACTION WITH CONSISTENT SNAPSHOT") < statement.index("@binlake_snap_lsn")
    assert f"@binlake_snap_lsn = {low.lsn}" in statement
    assert "@binlake_snap_file = 'mysql-bin-changelog.000123'" in statement
    assert "SESSION_STATUS" not in statement  # MySQL has no binlog_snapshot_* variables
    jdbc = with_watermark(JdbcSource("jdbc:mysql://h:3306/", {"user": "u", "sessionInitStatement": "x"}), low)
    assert jdbc.properties == {"user": "u", "sessionInitStatement": statement}
