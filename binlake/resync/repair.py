"""``binlake validate --repair``: resync exactly the chunks validation found different.

For every table whose validation is ``DIFFERENT`` (rows still in flight are not a difference), one
resync (reason ``repair``) of the key ranges in :attr:`TableValidation.repair_ranges` — the chunks
whose checksums differ, all chunks of a table compared row by row, or the whole table when lake
rows have a NULL key part. The merge applies them like any resync; run ``binlake validate`` again
once ``binlake tables`` shows the resync applied.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pyspark.sql import SparkSession

from binlake.chunks import ChunkRange
from binlake.config import PipelineConfig
from binlake.resync.job import ResyncError, run_resync
from binlake.resync.report import ResyncReport
from binlake.validation.report import TableValidation

log = logging.getLogger("binlake.resync")


def repair(spark: SparkSession, config: PipelineConfig, results: Sequence[TableValidation]) -> list[ResyncReport]:
    """Start one resync per differing table (see the module docstring); returns their reports."""
    reports = []
    for result in results:
        report, _ = repair_table(spark, config, result)
        if report is not None:
            reports.append(report)
    return reports


def repair_table(
    spark: SparkSession, config: PipelineConfig, result: TableValidation
) -> tuple[ResyncReport | None, str | None]:
    """The resync of one table's differing chunks: ``(report, None)``; ``(None, why)`` when it was
    refused; ``(None, None)`` when the table needs none (not ``DIFFERENT``)."""
    if result.status != "DIFFERENT" or not result.repair_ranges:
        return None, None
    ranges = [ChunkRange.from_dict(r) for r in result.repair_ranges]
    log.info("repair: %s differs in %d of %d chunk(s): resyncing them", result.source, len(ranges), result.chunks)
    try:
        report = run_resync(config, spark, result.source, ranges=ranges, reason="repair")
    except ResyncError as exc:
        log.error("repair: %s: %s", result.source, exc)
        return None, str(exc)
    print(report.text())
    return report, None
