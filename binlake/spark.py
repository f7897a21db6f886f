"""The one place where binlake builds a SparkSession.

Jars come from the local folder filled by ``make setup`` (``.jars/`` or ``$BINLAKE_JARS``), never
from a download at run time. Every session runs in UTC, with Delta's SQL extension and catalog,
Parquet dates/timestamps written without calendar rebasing (so 1000-01-01 stays 1000-01-01), and,
when the lake is on S3, the s3a connector configured for the endpoint in the pipeline config.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from binlake.config import PipelineConfig, secret_setting_help
from binlake.sparkjvm import check_versions

CORE_JARS = ("delta-spark_", "delta-storage-", "mysql-connector-j-")
S3_JARS = ("hadoop-aws-", "bundle-", "analyticsaccelerator-s3-")


def jars_dir() -> Path:
    """Where ``make setup`` put the jars: ``$BINLAKE_JARS`` or ``<repo>/.jars``."""
    configured = os.environ.get("BINLAKE_JARS")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parent.parent / ".jars"


def find_jars(prefixes: tuple[str, ...], folder: Path | None = None) -> list[str]:
    """The jar files in ``folder`` whose names start with each prefix; fails naming what is missing."""
    folder = folder or jars_dir()
    found: list[str] = []
    for prefix in prefixes:
        matches = sorted(folder.glob(f"{prefix}*.jar"))
        if not matches:
            raise RuntimeError(f"jar {prefix}*.jar not found in {folder}: run `make setup` (or set BINLAKE_JARS)")
        found.append(str(matches[-1]))
    return found


def s3a_settings(config: PipelineConfig) -> dict[str, str]:
    """Hadoop s3a settings for the lake's S3 endpoint. They name credential providers, never keys:
    the SDK reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (temporary
    credentials included), then the profile, then the instance role, so no secret is ever part of
    Spark's settings (which Spark may log or show)."""
    s3 = config.lake.s3
    settings = {
        "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.endpoint.region": s3.region,
        "spark.hadoop.fs.s3a.path.style.access": str(s3.path_style).lower(),
        "spark.hadoop.fs.s3a.aws.credentials.provider": (
            "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider,"
            "software.amazon.awssdk.auth.credentials.ProfileCredentialsProvider,"
            "software.amazon.awssdk.auth.credentials.InstanceProfileCredentialsProvider"
        ),
        "spark.hadoop.fs.s3a.change.detection.mode": "none",
        "spark.hadoop.fs.s3a.checksum.validation": "false",
        "spark.hadoop.fs.s3a.create.checksum.algorithm": "",
    }
    if s3.endpoint:
        settings["spark.hadoop.fs.s3a.endpoint"] = s3.endpoint
        settings["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(s3.endpoint.startswith("https")).lower()
    return settings


def session_settings(config: PipelineConfig, app: str) -> dict[str, str]:
    """All settings binlake applies to a session for ``config`` (pure; handy for tests)."""
    jars = find_jars(CORE_JARS) + (find_jars(S3_JARS) if config.lake.is_s3 else [])
    settings = {
        "spark.app.name": f"binlake-{config.name}-{app}",
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
        "spark.sql.parquet.datetimeRebaseModeInRead": "CORRECTED",
        "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
        "spark.sql.parquet.int96RebaseModeInRead": "CORRECTED",
        "spark.sql.ansi.enabled": "false",
        "spark.sql.shuffle.partitions": "8",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        # the merge applies tables concurrently, each thread in its own pool: small MERGEs are not
        # queued behind the tasks of a big one (binlake.merge.parallel)
        "spark.scheduler.mode": "FAIR",
    }
    if "PYSPARK_GATEWAY_PORT" not in os.environ:  # we launch the JVM: name the jars; spark-submit has them
        settings["spark.jars"] = ",".join(jars)
        settings["spark.pyspark.python"] = sys.executable
    if config.lake.is_s3:
        settings.update(s3a_settings(config))
    settings.update(config.spark.conf)
    secret = next((key for key in settings if secret_setting_help(key)), None)
    if secret is not None:  # the config parser refuses these; a config built in code must not slip one in
        raise ValueError(f"Spark setting {secret} holds a secret: {secret_setting_help(secret)}")
    return settings


def spark_defaults(folder: Path | None = None) -> str:
    """``spark-defaults.conf`` lines that put the jars on every driver and executor classpath.

    ``spark-submit`` starts the driver JVM before any Python runs, so jars named later (in the
    session builder) never reach the driver's classpath; these defaults do, without copying the
    jars anywhere (executors on other hosts need the same folder, or ``--jars``).
    """
    classpath = str((folder or jars_dir()).resolve() / "*")
    return "\n".join([
        "# written by `make setup` (python -m binlake.spark): binlake's jars from .jars/",
        f"spark.driver.extraClassPath {classpath}",
        f"spark.executor.extraClassPath {classpath}",
        f"spark.pyspark.python {sys.executable}",
        f"spark.pyspark.driver.python {sys.executable}",
        "spark.sql.extensions io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "",
    ])


def install_spark_defaults() -> Path:
    """Write :func:`spark_defaults` into the ``conf/`` folder of the installed pyspark."""
    import pyspark

    conf_dir = Path(pyspark.__file__).parent / "conf"
    conf_dir.mkdir(exist_ok=True)
    target = conf_dir / "spark-defaults.conf"
    target.write_text(spark_defaults())
    return target


def build_session(config: PipelineConfig, app: str) -> SparkSession:
    """The SparkSession for one binlake job. A master set in the config wins over spark-submit's.
    Refuses a Spark or Delta major version binlake's JVM adapter was not tested with
    (:func:`binlake.sparkjvm.check_versions`)."""
    check_versions()
    builder = SparkSession.builder
    master = config.spark.master
    if master is None and "PYSPARK_GATEWAY_PORT" not in os.environ:  # spark-submit picks the master itself
        master = os.environ.get("BINLAKE_SPARK_MASTER", "local[*]")
    if master:
        builder = builder.master(master)
    if master and master.startswith("local"):  # a local session needs no network beyond loopback
        builder = builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
    for key, value in session_settings(config, app).items():
        builder = builder.config(key, value)
    # Python workers (the full load's Arrow reader) run PYSPARK_PYTHON, which pyspark reads from the
    # environment only (not spark.pyspark.python): without it they would run whatever `python3` is.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    _quiet_known_noise(session)
    return session


def _quiet_known_noise(session: SparkSession) -> None:
    """Delta 4.4 logs a harmless ERROR on every read of a table with deletion vectors ("Failed to
    translate filter EqualTo(__delta_internal_is_row_deleted,0)": the filter is applied anyway)."""
    jvm = session.sparkContext._jvm
    assert jvm is not None
    level = jvm.org.apache.logging.log4j.Level.OFF
    jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(
        "org.apache.spark.sql.delta.DeltaParquetFileFormat", level)


if __name__ == "__main__":
    print(f"wrote {install_spark_defaults()}")
