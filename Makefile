# Two commands for a new machine: `make run` and `make test`.
# Both create .venv with the pinned dependencies first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | sha256sum | cut -c1-12)

# The project turns off every library's telemetry and update check itself.
export NML_DISABLE_USAGE_LOGGING := 1
export GX_ANALYTICS_ENABLED := False
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1
export PYTHONHASHSEED := 0
# DVC runs each stage's command through the shell: `driftloop` must be on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: run test test-fast lint bench java venv lock clean

run: $(STAMP)
	$(BIN)/driftloop compose
	$(BIN)/dvc repro

# Every core runs tests (pytest-xdist): each worker builds the fully run
# project its tests share once, in parallel with the other's; an idle worker
# takes queued tests from a busy one (worksteal), so both finish together.
test: $(STAMP)
	$(BIN)/ruff check driftloop stages tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest -q -p no:cacheprovider -n auto --dist worksteal

# The inner loop (under 3 minutes): unit tests, no Spark, no pipeline runs.
test-fast: $(STAMP)
	$(BIN)/ruff check driftloop stages tests benchmarks
	$(BIN)/pytest -q -p no:cacheprovider -m "not slow" tests/unit

lint: $(STAMP)
	$(BIN)/ruff check driftloop stages tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m benchmarks.featurize
	$(BIN)/python -m benchmarks.train
	$(BIN)/python -m benchmarks.batch_predict
	$(BIN)/python -m benchmarks.serve
	$(BIN)/python -m benchmarks.serve --compare-workers 2
	$(BIN)/python -m benchmarks.monitor
	$(BIN)/python -m benchmarks.spark_cluster

java:
	@command -v java >/dev/null 2>&1 || { echo "driftloop needs Java 17 or newer for Spark: 'java' is not on PATH (Debian: apt-get install openjdk-17-jre-headless)"; exit 1; }
	@v=$$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1); \
	  [ "$${v:-0}" -ge 17 ] || { echo "driftloop needs Java 17 or newer for Spark: found Java $${v:-unknown}"; exit 1; }

venv: $(STAMP)

$(STAMP): pyproject.toml requirements.lock | java
	rm -f $(VENV)/.installed-*
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

# Re-resolve the pinned tree after changing a pin in pyproject.toml.
lock:
	rm -rf /tmp/driftloop-lock && $(PYTHON) -m venv /tmp/driftloop-lock
	/tmp/driftloop-lock/bin/pip install -q -e '.[dev]'
	{ echo "# Full pinned environment (pip freeze of a resolved install of pyproject.toml's pins)."; \
	  echo "# Regenerate: make lock"; \
	  /tmp/driftloop-lock/bin/pip freeze --exclude-editable; } > requirements.lock

clean:
	rm -rf $(VENV)
