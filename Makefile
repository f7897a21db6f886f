# binlake — every target carries a one-line description; `make` alone lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
JARS := .jars
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup python-deps jars spark-defaults mariadb demo demo-s3 test test-slow lint typecheck bench config-reference clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-18s %s\n", $$1, $$2}'

setup: python-deps jars spark-defaults mariadb ## Install everything: Python deps (.venv), JVM jars (.jars), MariaDB server

python-deps: $(VENV)/.installed ## Python package, pyspark/delta-spark and dev tools into .venv

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[spark,dev]'
	touch $@

jars: $(JARS)/.fetched $(JARS)/s3proxy/.fetched ## Delta, S3 (hadoop-aws + AWS SDK), JDBC jars and the test S3 server (s3proxy) from Maven Central into .jars/ (once)

$(JARS)/.fetched: build/jars/pom.xml
	command -v mvn >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven)
	mkdir -p $(JARS) && rm -f $(JARS)/*.jar
	mvn -q -B -f build/jars/pom.xml dependency:copy-dependencies -DexcludeTransitive=true -DoutputDirectory=$(CURDIR)/$(JARS)
	touch $@

# s3proxy with its transitive dependencies, in a folder of its own: none of them reach Spark's classpath.
$(JARS)/s3proxy/.fetched: build/s3proxy/pom.xml
	command -v mvn >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven)
	rm -rf $(JARS)/s3proxy && mkdir -p $(JARS)/s3proxy
	mvn -q -B -f build/s3proxy/pom.xml dependency:copy-dependencies -DoutputDirectory=$(CURDIR)/$(JARS)/s3proxy
	touch $@

spark-defaults: $(VENV)/.spark-defaults ## Put .jars/ on spark-submit's driver/executor classpath (pyspark's conf/)

$(VENV)/.spark-defaults: $(VENV)/.installed $(JARS)/.fetched
	$(PY) -m binlake.spark
	touch $@

mariadb: ## Debian's mariadb-server (binaries only; binlake starts its own servers)
	@command -v mariadbd >/dev/null || test -x /usr/sbin/mariadbd || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server mariadb-client)

demo: setup ## Run the embedded demo: local MariaDB + sample data → capture + full load + merge → local lake
	$(VENV)/bin/binlake demo

demo-s3: setup ## The same demo with its lake on a private S3-compatible server on loopback (s3proxy)
	$(VENV)/bin/binlake demo --s3

test: setup ## Run the test suite (unit + integration, without the slow soak cases)
	$(VENV)/bin/pytest -m "not slow" --durations=30 $(PYTEST_ARGS)

test-slow: setup ## Run only the slow soak/crash cases
	$(VENV)/bin/pytest -m slow $(PYTEST_ARGS)

lint: python-deps ## ruff
	$(VENV)/bin/ruff check binlake jobs streaming tests bench

typecheck: python-deps ## mypy (strict) on the package
	$(VENV)/bin/mypy

bench: setup ## Run the benchmarks in bench/ (full load, capture, merge, validate)
	$(PY) bench/full_load_bench.py
	$(PY) bench/capture_bench.py
	$(PY) bench/merge_bench.py
	$(PY) bench/validate_bench.py

config-reference: python-deps ## Print the config reference (Markdown) generated from binlake/config.py
	@$(VENV)/bin/binlake config-reference

clean: ## Remove the demo's run directory and local lake
	rm -rf .run lake
