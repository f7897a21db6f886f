"""A Spark standalone cluster (one master, one worker) on loopback, started from pyspark's own
``spark-class`` — for proving the jobs have no driver-local assumptions."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from binlake.devdb import free_port


def spark_home() -> Path:
    """pyspark's install folder, which has ``bin/spark-class`` and ``jars/``."""
    import pyspark

    return Path(pyspark.__file__).parent


class StandaloneCluster:
    def __init__(self, workdir: Path, cores: int = 2, memory: str = "2g") -> None:
        self.workdir = workdir
        self.cores = cores
        self.memory = memory
        self.port = free_port()
        self.ui_port = free_port()
        self.worker_ui_port = free_port()
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def _spawn(self, name: str, *args: str) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        env = {**os.environ, "SPARK_HOME": str(spark_home()), "SPARK_LOCAL_IP": "127.0.0.1",
               "SPARK_WORKER_DIR": str(self.workdir / "work"), "PYSPARK_PYTHON": sys.executable}
        self.processes.append(
            subprocess.Popen([str(spark_home() / "bin" / "spark-class"), *args], stdout=log,
                             stderr=subprocess.STDOUT, env=env, start_new_session=True)
        )

    def start(self, timeout: float = 90.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._spawn("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                    "--port", str(self.port), "--webui-port", str(self.ui_port))
        self._spawn("worker", "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                    "--cores", str(self.cores), "--memory", self.memory, "--webui-port", str(self.worker_ui_port),
                    self.url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=2) as response:
                    if b'"aliveworkers" : 1' in response.read().replace(b'"aliveworkers":1', b'"aliveworkers" : 1'):
                        return
            except OSError:
                pass
            time.sleep(1)
        raise TimeoutError(f"standalone cluster did not come up; see {self.workdir}/*.log")

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()
