"""Pipeline configuration: every key declared once, with type, default and description.

A pipeline is one YAML file (see ``conf/demo.yaml``). :func:`load_config` reads it into an
immutable :class:`PipelineConfig`; any problem raises :class:`ConfigError` naming the file, the key
and what is wrong. Secrets are never part of the file: the source password comes from an
environment variable or a file named in the config, S3 credentials from the standard AWS chain.

The README's config reference is generated from these declarations (``binlake config-reference``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from binlake.logs import register_secret
from binlake.tablefeatures import ColumnChange, ReaderCompatibility


class ConfigError(ValueError):
    """A pipeline config that cannot be used; the message names file, key and the fix."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TlsMode(StrEnum):
    """How a connection to the source is encrypted and verified (MySQL's ``--ssl-mode`` values)."""

    DISABLED = "disabled"
    PREFERRED = "preferred"
    REQUIRED = "required"
    VERIFY_CA = "verify-ca"
    VERIFY_IDENTITY = "verify-identity"

    @property
    def encrypts(self) -> bool:
        """Is a plain connection refused?"""
        return self not in (TlsMode.DISABLED, TlsMode.PREFERRED)

    @property
    def verifies(self) -> bool:
        """Is the server's certificate checked against the trusted CAs?"""
        return self in (TlsMode.VERIFY_CA, TlsMode.VERIFY_IDENTITY)


class TlsConfig(_Frozen):
    """TLS of every connection binlake makes to the source (capture, full load, validation, status)."""

    mode: TlsMode = Field(
        TlsMode.PREFERRED,
        description="disabled, preferred (TLS when the server offers it, unverified: a warning is logged), "
        "required (TLS, unverified), verify-ca (TLS, certificate signed by a trusted CA) or verify-identity "
        "(verify-ca and the certificate names source.host; recommended, with the AWS CA bundle on RDS/Aurora).",
    )
    ca_file: str | None = Field(
        None,
        description="PEM file of the CAs trusted for verify-ca / verify-identity (e.g. AWS's global-bundle.pem); "
        "unset = the system's trusted CAs (Python's and Java's default stores).",
    )
    cert_file: str | None = Field(None, description="PEM client certificate, for servers that require one.")
    key_file: str | None = Field(None, description="PEM private key (unencrypted) of cert_file.")
    allow_public_key_retrieval: bool = Field(
        False,
        description="Let caching_sha2_password / sha256_password send the password RSA-encrypted with a public "
        "key the server sends over a plain (unencrypted) connection. A man in the middle can substitute the "
        "key: leave false and use TLS; over TLS the password is sent inside the encrypted connection.",
    )

    @field_validator("ca_file", "cert_file", "key_file")
    @classmethod
    def _local_file(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).expanduser().is_file():
            raise ValueError(f"{value} is not a file")
        return None if value is None else str(Path(value).expanduser().resolve())

    @model_validator(mode="after")
    def _client_pair(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: set both or neither")
        if self.cert_file is not None and not self.mode.encrypts:
            raise ValueError(f"a client certificate needs mode required or stronger, not {self.mode.value}")
        return self


class SourceConfig(_Frozen):
    """The MySQL/MariaDB server to replicate from."""

    host: str = Field("127.0.0.1", description="Source host name or address.")
    port: int = Field(3306, ge=1, le=65535, description="Source TCP port.")
    user: str = Field("binlake", description="User with SELECT, RELOAD, REPLICATION SLAVE, REPLICATION CLIENT.")
    password_env: str | None = Field(
        "BINLAKE_SOURCE_PASSWORD",
        description="Environment variable holding the password. Never put the password itself in the file.",
    )
    password_file: str | None = Field(
        None, description="File whose first line is the password (used when set, instead of password_env)."
    )
    server_id: int = Field(
        4242, ge=1, le=2**32 - 1, description="Replica server_id of the capture; unique per capture process."
    )
    connect_timeout_s: int = Field(10, ge=1, description="Seconds to wait when connecting.")
    read_timeout_s: int = Field(60, ge=1, description="Seconds without data before a connection counts as dead.")
    tls: TlsConfig = Field(default_factory=TlsConfig, description="TLS of every connection to the source.")

    def password(self) -> str:
        """The password from ``password_file`` or ``password_env`` ('' when neither is set); from
        then on it is masked in this process's log lines (:func:`binlake.logs.register_secret`)."""
        password = ""
        if self.password_file:
            path = Path(self.password_file).expanduser()
            if not path.is_file():
                raise ConfigError(f"source.password_file: {path} does not exist")
            password = path.read_text().splitlines()[0] if path.stat().st_size else ""
        elif self.password_env:
            password = os.environ.get(self.password_env, "")
        register_secret(password)
        return password


class S3Config(_Frozen):
    """How to reach S3 or an S3-compatible server. Credentials come from the AWS environment/profile chain."""

    endpoint: str | None = Field(None, description="Endpoint URL, e.g. http://127.0.0.1:9000; unset for AWS.")
    region: str = Field("us-east-1", description="Region (SigV4 signing needs one).")
    path_style: bool = Field(False, description="Path-style addressing (most S3-compatible servers need it).")


class CatalogKind(StrEnum):
    """Where lake tables are registered by name (:mod:`binlake.registration`)."""

    NONE = "none"
    HIVE = "hive"
    GLUE = "glue"


class LakeConfig(_Frozen):
    """Where the Delta tables and binlake's own state live."""

    root: str = Field(
        ..., description="Lake root: a local path (relative = from the config file's folder) or s3a://bucket/prefix."
    )
    s3: S3Config = Field(default_factory=S3Config, description="S3 settings, used when root is s3a://.")
    reader_compatibility: ReaderCompatibility = Field(
        ReaderCompatibility.BROAD,
        description="Delta features of new lake tables: broad = no deletion vectors, no column mapping, no type "
        "widening (delta-rs to_pyarrow_table/to_pandas and polars read every table; MERGEs rewrite whole files); "
        "modern = deletion vectors and column mapping from the start (fastest MERGEs; read by Spark and delta-rs "
        "QueryBuilder only). Existing tables keep the features they were created with.",
    )
    on_column_rename: ColumnChange = Field(
        ColumnChange.REWRITE,
        description="A column rename, drop or type change of a table without column mapping (broad mode): rewrite "
        "= the table is rewritten with its new columns in one commit (every reader keeps reading it; cost "
        "proportional to the table's size); column_mapping = column mapping is turned on for that table, with a "
        "warning naming the readers that stop reading it.",
    )
    retries: int = Field(
        10, ge=0,
        description="Retries of a write or read of binlake's own lake files (change log, checkpoint, state) that "
        "failed with a transient error (S3 5xx, throttling, timeouts, connection resets); each retry is logged. "
        "Persistent errors (access denied, no such bucket, disk full, read-only) are never retried.",
    )
    retry_max_seconds: float = Field(
        30.0, gt=0,
        description="Longest wait between two retries (the waits start at 0.5 s and double): with the defaults "
        "the capture waits about 3 minutes for the lake before it stops.",
    )
    catalog: CatalogKind = Field(
        CatalogKind.NONE,
        description="Register every lake table by name as an external Delta table (database = lake schema, "
        "table = lake table; renames, drops and new tables followed): none, hive (Spark's session catalog on a Hive "
        "metastore: hive_metastore_uris, or a JDBC metastore through spark.conf) or glue (AWS Glue Data Catalog, "
        "as Athena reads Delta tables). Registration runs in its own process and never stops replication: "
        "failures are logged, retried and shown by `binlake status`; `binlake catalog sync` re-registers all.",
    )
    hive_metastore_uris: str | None = Field(
        None,
        description="thrift://host:9083[,…] of the Hive metastore (lake.catalog: hive); unset = Spark's own "
        "settings (hive-site.xml, spark.conf spark.hadoop.javax.jdo.option.ConnectionURL for a JDBC metastore, "
        "else an embedded Derby metastore_db in the working directory).",
    )
    glue_region: str | None = Field(None, description="Region of the Glue Data Catalog; unset = lake.s3.region.")
    glue_endpoint: str | None = Field(
        None, description="Glue endpoint URL; unset = AWS's. Credentials come from the AWS environment/profile chain."
    )
    glue_catalog_id: str | None = Field(None, description="Glue catalog id (AWS account id); unset = the caller's.")
    catalog_retry_seconds: float = Field(
        60.0, gt=0, description="Seconds before a failed registration is tried again by the merge."
    )
    catalog_timeout_seconds: float = Field(
        600.0, gt=0,
        description="Longest run of one registration process; longer ones are stopped and count as failed.",
    )

    @field_validator("hive_metastore_uris")
    @classmethod
    def _thrift_uris(cls, value: str | None) -> str | None:
        if value is not None and not all(u.strip().startswith("thrift://") for u in value.split(",")):
            raise ValueError("must be thrift://host:port[,thrift://host:port…]")
        return value

    @field_validator("root")
    @classmethod
    def _root_scheme(cls, value: str) -> str:
        if "://" in value and not value.startswith(("s3a://", "file://")):
            raise ValueError("must be a local path, file://… or s3a://bucket/prefix")
        if "://" not in value:  # a relative local path is taken from the working directory, made absolute
            value = os.path.abspath(os.path.expanduser(value))
        return value.rstrip("/")

    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3a://")


class PrepMode(StrEnum):
    """DMS TargetTablePrepMode."""

    DROP_AND_CREATE = "DROP_AND_CREATE"
    TRUNCATE_BEFORE_LOAD = "TRUNCATE_BEFORE_LOAD"
    DO_NOTHING = "DO_NOTHING"


class SnapshotMethod(StrEnum):
    """How a full-load chunk's rows get the binlog position they are consistent with."""

    AUTO = "auto"
    MARIADB = "mariadb"
    WATERMARK = "watermark"


class UnappliableDdl(StrEnum):
    """What the merge does with a DDL whose effect on stored values the lake cannot derive."""

    RESYNC = "resync"
    STOP = "stop"


class ChunkReader(StrEnum):
    """How the full load reads a chunk (binlake.snapshot.arrowread, binlake.snapshot.reading)."""

    AUTO = "auto"
    DIRECT = "direct"
    ARROW = "arrow"
    JDBC = "jdbc"


class FullLoadConfig(_Frozen):
    """The full load (``jobs/full_load.py``)."""

    target_table_prep_mode: PrepMode = Field(
        PrepMode.DROP_AND_CREATE,
        description="DROP_AND_CREATE, TRUNCATE_BEFORE_LOAD or DO_NOTHING (skip tables already loaded), as in DMS.",
    )
    chunk_rows: int = Field(250_000, ge=1, description="Target rows per chunk (one Spark task each).")
    chunk_bytes: int = Field(
        64 * 1024 * 1024, ge=1,
        description="…and at most this many bytes per chunk, estimated from the table's average row size "
        "(server statistics or a sample of rows, the larger), so wide rows get smaller chunks.",
    )
    reader: ChunkReader = Field(
        ChunkReader.AUTO,
        description="How chunks are read (docs/full-load.md): auto (the default: direct where it applies — "
        "connectorx and deltalake installed, no TLS to the source: source.tls.mode disabled, or preferred "
        "against a server that offers no TLS; else jdbc), direct (ConnectorX reads each chunk as Arrow, pyarrow "
        "writes its Parquet file, delta-rs commits it: the fastest; a lake on S3 gets arrow), arrow (ConnectorX "
        "inside Spark tasks, Spark writes) or jdbc (Spark's JDBC source with Connector/J).",
    )
    arrow_batch_bytes: int = Field(
        16 * 1024 * 1024, ge=1,
        description="arrow reader: rows per Arrow batch are this many bytes at the table's estimated row size "
        "(at most 65,536 rows), which bounds a task's memory whatever the chunk size.",
    )
    max_parallel_chunks: int = Field(
        0, ge=0, description="Chunks read at once; 0 = the Spark cluster's default parallelism."
    )
    tables_in_parallel: int = Field(1, ge=1, description="Tables loaded at the same time.")
    no_primary_key: Literal["load_whole", "refuse"] = Field(
        "load_whole",
        description="Tables without a primary key: load_whole (one chunk, with a warning) or refuse.",
    )
    jdbc_fetch_size: int = Field(10_000, ge=1, description="JDBC fetch size per chunk read.")
    snapshot_method: SnapshotMethod = Field(
        SnapshotMethod.AUTO,
        description="mariadb (each chunk's snapshot reports its exact binlog position: MariaDB, Percona "
        "Server), watermark (chunks labelled with the binlog end read just before their snapshot: MySQL, "
        "Aurora, RDS; see docs/full-load.md) or auto (mariadb where the server has it, else watermark).",
    )
    source: SourceConfig | None = Field(
        None,
        description="Read the full load from this server instead of source: another endpoint of the captured "
        "server, or a GTID replica of it (MariaDB: log_bin + log_slave_updates; MySQL: gtid_mode ON and "
        "replica_preserve_commit_order), whose chunks are labelled in the primary's order from the replica's GTIDs "
        "and the change log (the capture must be running; docs/full-load.md). Unset = source.",
    )
    replica_wait_seconds: float = Field(
        300.0, gt=0,
        description="full_load.source is a replica: how long a chunk waits for the capture's checkpoint to pass "
        "the replica's GTID position (with full_load.signal_table and the watermark method: for the signal committed "
        "on the primary to appear on the replica) before the load stops with an error.",
    )
    watermark_settle_seconds: float = Field(
        0.5, ge=0,
        description="watermark method without full_load.signal_table: wait between reading a chunk's low watermark "
        "and starting its snapshot, so transactions already in the binlog have finished their storage-engine commit "
        "(a timing assumption; unused when full_load.signal_table is set).",
    )
    signal_table: str = Field(
        "",
        description="watermark method: <schema>.<table> on the source into which a one-row signal is committed after "
        "each low watermark is read and before the chunk's snapshot starts, which makes the label exact (needs "
        "binlog_order_commits ON; binlake creates the table if it may, else says the DDL and the INSERT/UPDATE "
        "grant; the table is never replicated). Empty = the settle wait (full_load.watermark_settle_seconds).",
    )

    @field_validator("signal_table")
    @classmethod
    def _signal_table_name(cls, value: str) -> str:
        from binlake.snapshot.signal import SignalTable  # local: signal imports source, which imports config

        SignalTable.parse(value)
        return value.strip()


class StartFrom(StrEnum):
    CHECKPOINT = "checkpoint"
    END = "end"
    POSITION = "position"


class CaptureConfig(_Frozen):
    """The binlog capture (``binlake capture``)."""

    start: StartFrom = Field(
        StartFrom.CHECKPOINT,
        description="checkpoint (saved checkpoint, else the current end of the binlog), end (every run), or "
        "position (applied once; restarts with the same setting resume from the checkpoint).",
    )
    start_file: str | None = Field(None, description="Binlog file to start at, with start: position.")
    start_pos: int | None = Field(None, ge=4, description="Binlog offset to start at, with start: position.")
    start_gtid: str | None = Field(None, description="GTID set to start after, with start: position (MariaDB).")
    flush_rows: int = Field(50_000, ge=1, description="Write a change-log file after this many records…")
    flush_seconds: float = Field(1.0, gt=0, description="…or after this many seconds, whichever comes first.")
    heartbeat_seconds: float = Field(5.0, gt=0, description="Source heartbeat period (keeps an idle stream alive).")
    min_binlog_retention_hours: float = Field(
        24.0, ge=0,
        description="The pre-flight warns when the source keeps binlogs for less (RDS/Aurora: 'binlog retention "
        "hours'; else binlog_expire_logs_seconds / expire_logs_days): a capture down for longer needs a full load.",
    )
    reconnect_max_seconds: float = Field(60.0, gt=0, description="Longest back-off between reconnect attempts.")
    max_transaction_rows_in_memory: int = Field(
        100_000, ge=1,
        description="Records of one open transaction held in memory; beyond that its records so far go to a "
        "local spill file, so memory stays bounded whatever the transaction size.",
    )
    max_transaction_bytes_in_memory: int = Field(
        256 * 1024 * 1024, ge=1,
        description="Bytes (estimated: encoded row images plus a small per-record overhead) of one open "
        "transaction held in memory; beyond that its records so far go to a local spill file, like "
        "max_transaction_rows_in_memory.",
    )
    flush_bytes: int = Field(
        64 * 1024 * 1024, ge=1,
        description="…or after this many bytes of committed records are waiting (the same estimate), so "
        "large rows never pile up in memory before a flush.",
    )
    spill_dir: str | None = Field(
        None,
        description="Local folder for spill files (the capture makes a private subfolder, removes it on exit and "
        "removes those of killed captures at start); unset = the system temp folder. Never the lake.",
    )
    local_status_file: str | None = Field(
        None,
        description="Local copy of the capture's status.json, written with every status update so binlake status "
        "can show a failure even when the lake cannot be written; unset = binlake-status-NAME-HASH.json (pipeline "
        "name, hash of lake.root) in the system temp folder.",
    )

    @field_validator("spill_dir")
    @classmethod
    def _local_spill_dir(cls, value: str | None) -> str | None:
        if value is not None and "://" in value:
            raise ValueError("must be a local folder (spill files are scratch, never in the lake)")
        return value

    @field_validator("local_status_file")
    @classmethod
    def _local_status_file(cls, value: str | None) -> str | None:
        if value is not None and "://" in value:
            raise ValueError("must be a local path (it is the copy of the status that does not depend on the lake)")
        return value


class MergeConfig(_Frozen):
    """The streaming merge (``streaming/merge.py``)."""

    trigger_seconds: float = Field(5.0, gt=0, description="Micro-batch interval.")
    max_files_per_batch: int = Field(200, ge=1, description="Most change-log files read per micro-batch.")
    max_batch_records: int = Field(
        200_000, ge=1,
        description="Most change-log records of one table applied by one MERGE: a table's part of a micro-batch "
        "(or of the catch-up that joins it after its full load) is cut by lsn into steps of at most this many "
        "records, so memory stays bounded whatever the backlog (a single binlog event is never cut).",
    )
    max_batch_bytes: int = Field(
        64 * 1024 * 1024, ge=1,
        description="…and of at most this many bytes of row images (before + after, as the change log holds "
        "them): the bound that counts for wide rows; see docs/merge.md, Memory.",
    )
    max_parallel_tables: int = Field(
        4, ge=1, description="Tables of a micro-batch applied at the same time (each in its own Spark session, "
        "its steps in order); 1 = one after the other."
    )
    small_part_records: int = Field(
        10_000, ge=0,
        description="A table's part of a micro-batch with at most this many records (and no DDL, one row layout, "
        "no schema change, not SCD2, no source filter or add-column) is merged on the driver with delta-rs "
        "instead of a Spark MERGE: same clauses, tombstones and transaction, about 50 ms instead of about a "
        "second, so freshness stays flat with many tables (docs/merge.md, Many tables); 0 = Spark merges every part.",
    )
    small_part_bytes: int = Field(
        16 * 1024 * 1024, ge=1,
        description="…and at most this many bytes of row images: every small part of a batch is held in the "
        "driver's Python memory at once. A micro-batch whose change-log files total at most this many bytes is "
        "also read by the driver itself (its summary and small parts then cost no Spark job).",
    )
    scd2_tables: tuple[str, ...] = Field(
        (), description="Target tables ('schema.table') kept as full history (SCD type 2) instead of current state."
    )
    optimize_every_batches: int = Field(
        50, ge=0, description="OPTIMIZE each touched table every N batches (0 = never)."
    )
    vacuum_retention_hours: int = Field(168, ge=0, description="VACUUM retention when maintenance runs.")
    metrics_retention_days: int = Field(
        30, ge=0,
        description="Rows of the metrics table (_binlake/merge/metrics) older than this (merged_at) are deleted by "
        "maintenance, at most once a day (0 = kept forever).",
    )
    on_unappliable_ddl: UnappliableDdl = Field(
        UnappliableDdl.RESYNC,
        description="DDL whose effect on stored values the lake cannot derive (expression defaults, generated "
        "or AUTO_INCREMENT columns, converting MODIFY/CHANGE, partition maintenance): 'resync' the table "
        "online automatically, or 'stop' the merge with the command to run.",
    )
    verify_every_minutes: float = Field(
        0.0, ge=0,
        description="The background verifier inside the continuous merge (as binlake validate --every, on a "
        "thread of the merge, stopped with it): every selected table is validated again this many minutes after "
        "the previous round started, its source reads paced by validation.step_chunks and "
        "validation.max_chunks_per_second; each table's verified_as_of shows in binlake status. 0 = off; "
        "--available-now runs never verify.",
    )
    verify_repair: bool = Field(
        False,
        description="With merge.verify_every_minutes: a table the verifier finds different gets one online resync "
        "of exactly its differing chunks (as validate --repair), applied by this merge; false = reported only.",
    )
    verify_wait_seconds: float = Field(
        60.0, ge=0,
        description="With merge.verify_every_minutes: a table with rows in flight (changed while it was checked) "
        "is validated again for up to this many seconds until they settle (as validate --wait).",
    )


class ChangelogConfig(_Frozen):
    """The change log's lifecycle (files under ``_binlake/changelog``; removed by the merge's maintenance)."""

    retention_hours: float = Field(
        24.0, ge=0,
        description="A change-log file is removed once every reader has applied it (the merge, every table not "
        "joined yet from its snapshot, the capture checkpoint) and it is older than this; within it the change "
        "log can still be replayed (a new merge checkpoint). Listing cost grows with the files it keeps.",
    )


class ValidationConfig(_Frozen):
    """Data validation (``binlake validate``), once or as the background verifier (``--every``)."""

    step_chunks: int = Field(
        8, ge=1,
        description="Chunks whose checksums one step asks of the source (one Spark job, at most as many queries at "
        "a time as Spark has cores); a stop request (SIGTERM) is honoured between steps.",
    )
    max_chunks_per_second: float = Field(
        0.0, ge=0,
        description="Source chunk checksums per second at most: after each step validation pauses so that the "
        "average stays below this (0 = no pause). Keeps the background verifier's source cost low: each chunk "
        "is one indexed range scan of up to full_load.chunk_rows rows.",
    )


class SparkConfig(_Frozen):
    """Spark session settings applied by binlake's entry points."""

    master: str | None = Field(None, description="Spark master; unset = spark-submit's choice (local[*] if none).")
    conf: dict[str, str] = Field(default_factory=dict, description="Extra Spark settings, key → value.")


class PipelineConfig(_Frozen):
    """One replication pipeline: source, lake, table selection and the three jobs."""

    name: str = Field("binlake", description="Pipeline name (used in logs and the Spark app name).")
    source: SourceConfig = Field(default_factory=SourceConfig, description="The source server.")
    lake: LakeConfig = Field(..., description="The lake.")
    table_mappings: dict[str, Any] = Field(
        ..., description="DMS table-mapping JSON ({rules: [...]}) inline; or use table_mappings_file."
    )
    full_load: FullLoadConfig = Field(default_factory=FullLoadConfig, description="Full-load settings.")
    capture: CaptureConfig = Field(default_factory=CaptureConfig, description="Capture settings.")
    merge: MergeConfig = Field(default_factory=MergeConfig, description="Merge settings.")
    changelog: ChangelogConfig = Field(default_factory=ChangelogConfig, description="Change-log lifecycle.")
    validation: ValidationConfig = Field(default_factory=ValidationConfig, description="Validation settings.")
    spark: SparkConfig = Field(default_factory=SparkConfig, description="Spark settings.")

    @model_validator(mode="before")
    @classmethod
    def _signal_table_never_replicated(cls, data: Any) -> Any:
        """``table_mappings`` gets an ``exclude`` rule for ``full_load.signal_table``: its rows never reach the lake."""
        if not isinstance(data, dict) or not isinstance(data.get("table_mappings"), dict):
            return data
        full_load = data.get("full_load")
        text = full_load.signal_table if isinstance(full_load, FullLoadConfig) else (
            full_load.get("signal_table") if isinstance(full_load, dict) else None)
        from binlake.snapshot.signal import SignalTable, with_exclusion  # local: see _signal_table_name

        try:
            table = SignalTable.parse(text) if isinstance(text, str) else None
        except ValueError:
            return data  # full_load.signal_table's own validator names the problem
        if table is None:
            return data
        return {**data, "table_mappings": with_exclusion(data["table_mappings"], table)}


def _error_key(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    return data


def _inline_mapping_file(data: dict[str, Any], path: Path) -> dict[str, Any]:
    mapping_file = data.pop("table_mappings_file", None)
    if mapping_file is None:
        return data
    if "table_mappings" in data:
        raise ConfigError(f"{path}: table_mappings and table_mappings_file: set only one of them")
    mapping_path = (path.parent / str(mapping_file)).resolve()
    try:
        data["table_mappings"] = json.loads(mapping_path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: table_mappings_file: {mapping_path} not found") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: table_mappings_file: {mapping_path} is not valid JSON: {exc}") from None
    return data


_SECRET_KEYS = {"password", "secret", "aws_secret_access_key", "aws_access_key_id"}


# A Spark or Hadoop setting whose value is a secret: its name ends so (fs.s3a.secret.key,
# fs.s3a.session.token, spark.ssl.keyPassword, spark.authenticate.secret, …) or it is an Azure account
# key. Names of providers and bindings (fs.s3a.aws.credentials.provider) are not secrets.
_SECRET_SETTING = re.compile(
    r"(?:password|passwd|secret|token|credentials?|access[._-]?key|secret[._-]?key|encryption[._-]?key)$"
    r"|(?:^|\.)account\.key\.",
    re.IGNORECASE,
)
_S3_SECRET_SETTING = re.compile(r"(?:^|\.)fs\.s3a\..*(?:access\.key|secret\.key|session\.token)$", re.IGNORECASE)
AWS_CREDENTIALS_HELP = (
    "S3 credentials come from the AWS chain: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN "
    "in the environment, a profile (AWS_PROFILE, ~/.aws/credentials) or the instance/container role"
)


def secret_setting_help(key: str) -> str | None:
    """Why ``spark.conf`` may not hold ``key`` and where its value belongs, or ``None`` for a
    setting that holds no secret."""
    if _S3_SECRET_SETTING.search(key):
        return AWS_CREDENTIALS_HELP
    if _SECRET_SETTING.search(key):
        return ("set it outside the pipeline file — in the environment, the cluster's spark-defaults.conf or a "
                "credentials provider; the source password goes in source.password_env / source.password_file")
    return None


def _reject_secret_settings(data: dict[str, Any], path: Path) -> None:
    spark = data.get("spark")
    conf = spark.get("conf") if isinstance(spark, dict) else None
    for key in conf if isinstance(conf, dict) else ():
        help_text = secret_setting_help(str(key))
        if help_text:
            raise ConfigError(f"{path}: spark.conf.{key}: holds a secret, and secrets are not allowed in the "
                              f"config file: {help_text}")


def _reject_inline_secrets(data: Any, path: Path, prefix: str = "") -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            full = f"{prefix}{key}"
            if str(key).lower() in _SECRET_KEYS:
                raise ConfigError(
                    f"{path}: {full}: secrets are not allowed in the config file; use "
                    "source.password_env / source.password_file, and the AWS environment for S3"
                )
            _reject_inline_secrets(value, path, f"{full}.")


def _anchor_lake_root(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """A relative local ``lake.root`` is taken relative to the config file's folder."""
    lake = data.get("lake")
    if isinstance(lake, dict) and isinstance(lake.get("root"), str) and "://" not in lake["root"]:
        root = Path(lake["root"]).expanduser()
        if not root.is_absolute():
            data["lake"] = {**lake, "root": str((path.resolve().parent / root).resolve())}
    return data


def parse_config(data: dict[str, Any], path: Path) -> PipelineConfig:
    """Validate an already-parsed mapping; ``path`` names the file in errors and anchors relative paths."""
    data = _anchor_lake_root(_inline_mapping_file(dict(data), path), path)
    _reject_inline_secrets(data, path)
    _reject_secret_settings(data, path)
    try:
        config = PipelineConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{_error_key(err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"{path}: {problems}") from None
    from binlake.rules import RuleError, TableMapping  # local: rules is pure, config is the only caller here

    try:
        TableMapping.parse(config.table_mappings)
    except RuleError as exc:
        raise ConfigError(f"{path}: table_mappings: {exc}") from None
    return config


def load_config(path: str | Path) -> PipelineConfig:
    """Read and validate a pipeline YAML file."""
    path = Path(path)
    return parse_config(_read_yaml(path), path)


def _type_name(annotation: Any) -> str:
    """A reader's name for a field type: ``int``, ``str (optional)``, ``one of: a, b``."""
    args = [arg for arg in get_args(annotation) if arg is not type(None)]
    if get_origin(annotation) is Literal:
        return "one of: " + ", ".join(str(arg) for arg in get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "one of: " + ", ".join(str(member.value) for member in annotation)
    if len(args) == 1 and len(get_args(annotation)) == 2:
        return f"{_type_name(args[0])} (optional)"
    if get_origin(annotation) in (tuple, dict, list):
        return {tuple: "list", dict: "mapping", list: "list"}[get_origin(annotation)]
    return getattr(annotation, "__name__", str(annotation))


def iter_reference(model: type[BaseModel] = PipelineConfig, prefix: str = "") -> Iterator[tuple[str, str, str, str]]:
    """Yield ``(key, type, default, description)`` for every declared key, depth first."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from iter_reference(annotation, f"{prefix}{name}.")
            continue
        if field.is_required():
            default = "(required)"
        elif field.default_factory is not None:
            default = json.dumps(field.default_factory())  # type: ignore[call-arg]
        else:
            value = field.default
            default = json.dumps(value.value if isinstance(value, Enum) else value)
        yield f"{prefix}{name}", _type_name(annotation), default, field.description or ""
        if prefix == "" and name == "table_mappings":
            yield ("table_mappings_file", "str (optional)", "null",
                   "Path (relative to the config file) of a DMS table-mapping JSON file, instead of table_mappings.")


def reference_markdown() -> str:
    """The config reference as a Markdown table (the README embeds this output)."""
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    for key, type_name, default, description in iter_reference():
        lines.append(f"| `{key}` | {type_name} | `{default}` | {description} |")
    return "\n".join(lines)
