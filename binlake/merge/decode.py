"""From change-log records to one decoded row per key: the source of a MERGE.

1. :func:`expand` — each record becomes the key images it affects: ``I``/``U`` upsert the after
   image; ``D`` deletes the before image's key; a ``U`` whose primary key changed also deletes the
   old key (before image). Same ``(lsn, row_idx)`` for both halves. A delete image holds only the
   key columns (the other columns decode to NULL and are never written).
2. :func:`decode` — the JSON images (``{column: canonical string}``) become typed columns through
   :func:`binlake.typemap.spark_parse_sql`, using the row layout of the step. A column that some
   rows' layouts lack gets a flag ``__bl_has<i>`` so those rows never overwrite it.
3. :func:`latest_per_key` — per key, the image with the greatest ``(lsn, row_idx)`` wins (MERGE
   needs at most one source row per target row, and only the latest change matters), found
   without holding a key's versions together: the greatest ``(lsn, row_idx)`` per key first (a hash
   aggregate over keys and numbers only), then the images carrying it (a broadcast semi join that
   streams the images). However often a key changed, memory holds one number per key, never its
   versions.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from binlake import typemap
from binlake.merge.layout import LayoutColumn
from binlake.merge.sql import col, quote

OP = "__bl_op"
LSN = "__bl_lsn"
IDX = "__bl_idx"
TS = "__bl_ts"
IMG = "__bl_img"
SOURCE_OP = "__bl_source_op"  # the record's own op (I/U/D): what $AR_H_OPERATION add-columns show
UPSERT = "U"
DELETE = "D"
_MAP = "map<string,string>"


def has_flag(index: int) -> str:
    return f"__bl_has{index}"


def expand(records: DataFrame, key: Sequence[str]) -> DataFrame:
    """Row records (``op`` in I/U/D) → ``(__bl_lsn, __bl_idx, __bl_ts, __bl_op, __bl_img, __bl_source_op)``.

    Only the key columns of the before image are ever needed (to delete a key, or to see that an
    update changed it), so only they are parsed from it.
    """
    key_struct = ", ".join(f"{quote(k)}: STRING" for k in key)
    parsed = records.select(
        F.col("lsn"), F.col("row_idx"), F.col("commit_ts"), F.col("op"),
        F.from_json("before", f"STRUCT<{key_struct}>").alias("b"), F.from_json("after", _MAP).alias("a"),
    )
    same_key: Column = reduce(
        lambda x, y: x & y,
        [F.col("b").getField(k).eqNullSafe(F.col("a").getItem(k)) for k in key],
        F.lit(True),
    )
    before_key = F.create_map(*[part for k in key for part in (F.lit(k), F.col("b").getField(k))])
    op = F.col("op")
    entries = F.array(
        F.struct(F.lit(UPSERT).alias("op"), F.col("a").alias("img"), op.isin("I", "U").alias("keep")),
        F.struct(F.lit(DELETE).alias("op"), before_key.alias("img"),
                 ((op == "D") | ((op == "U") & ~same_key)).alias("keep")),
    )
    kept = F.filter(entries, lambda e: e["keep"])
    exploded = parsed.select("lsn", "row_idx", "commit_ts", "op", F.explode(kept).alias("e"))
    return exploded.select(
        F.col("lsn").alias(LSN), F.col("row_idx").alias(IDX), F.col("commit_ts").alias(TS),
        F.col("e.op").alias(OP), F.col("e.img").alias(IMG), F.col("op").alias(SOURCE_OP),
    )


def decode(expanded: DataFrame, columns: Sequence[LayoutColumn], optional: set[str]) -> DataFrame:
    """Typed source columns (target names) from the image map; flags for ``optional`` columns."""
    raw = [F.col(IMG).getItem(c.name).alias(f"__bl_v{i}") for i, c in enumerate(columns)]
    flags = [F.map_contains_key(IMG, F.lit(c.name)).alias(has_flag(i))
             for i, c in enumerate(columns) if c.name in optional]
    staged = expanded.select(LSN, IDX, TS, OP, SOURCE_OP, *raw, *flags)
    typed = [F.expr(typemap.spark_parse_sql(c.column_type, quote(f"__bl_v{i}"))).alias(c.name)
             for i, c in enumerate(columns)]
    flag_names = [f.name for f in staged.schema.fields if f.name.startswith("__bl_has")]
    return staged.select(LSN, IDX, TS, OP, SOURCE_OP, *typed, *flag_names)


ORDER = "__bl_order"
_ROW_IDX_SPAN = 2**32  # row_idx is a non-negative 32-bit int: lsn * 2**32 + row_idx orders as (lsn, row_idx)


def change_order() -> Column:
    """``(lsn, row_idx)`` as one exact number (DECIMAL(38,0): a fixed-size aggregation buffer, so the
    greatest per key is a hash aggregate)."""
    return F.col(LSN).cast("decimal(38,0)") * F.lit(_ROW_IDX_SPAN).cast("decimal(38,0)") + F.col(IDX)


def latest_per_key(decoded: DataFrame, key: Sequence[str], keyed: bool = True) -> DataFrame:
    """One row per key: the one with the greatest ``(lsn, row_idx)``; ties are the same change
    written twice by the capture (after a crash), and one of them is kept.

    ``keyed`` (a primary key: the key is a few columns): in two passes that never group a key's
    versions (module doc). Otherwise the key is the whole image and each version is its own group,
    so ``max_by`` over the remaining columns (lsn, row_idx, op, commit time) holds nothing large."""
    if not keyed:
        return _max_by_per_key(decoded, key)
    staged = decoded.withColumn(ORDER, change_order())
    keys = [f"__bl_key{i}" for i in range(len(key))]  # own names: no ambiguity in the self join
    winners = (staged.groupBy(*[col(k).alias(n) for k, n in zip(key, keys, strict=True)])
               .agg(F.max(ORDER).alias("__bl_winner")))
    same = [col(k).eqNullSafe(F.col(n)) for k, n in zip(key, keys, strict=True)]
    condition = reduce(lambda x, y: x & y, same, F.col(ORDER) == F.col("__bl_winner"))
    latest = staged.join(F.broadcast(winners), condition, "left_semi")
    return latest.dropDuplicates([*key, ORDER]).drop(ORDER)


def _max_by_per_key(decoded: DataFrame, key: Sequence[str]) -> DataFrame:
    others = [name for name in decoded.columns if name not in set(key)]
    latest = F.max_by(F.struct(*[col(n) for n in others]), F.struct(col(LSN), col(IDX))).alias("__bl_row")
    return decoded.groupBy(*[col(k) for k in key]).agg(latest).select(*[col(k) for k in key], "__bl_row.*")
