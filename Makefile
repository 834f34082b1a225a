# Two commands on a fresh Debian/Ubuntu machine with Python 3.11+:  make demo  ·  make test
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BROWSER_STAMP := $(VENV)/.browser
REPLAY_STAMP := $(VENV)/.replaywebpage

.PHONY: demo test lint bench install browser clean

install: $(STAMP) $(BROWSER_STAMP) $(REPLAY_STAMP)
	@# Bytecode for our own packages, as a non-editable install has: without it a
	@# command recompiles them at every start where PYTHONDONTWRITEBYTECODE is set.
	$(PY) -m compileall -q osint_capture cases chain_of_custody

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# Playwright's own Chromium where it can be downloaded, else the distribution's package.
$(BROWSER_STAMP): $(STAMP) scripts/install-browser.sh
	sh scripts/install-browser.sh $(VENV)
	touch $@

browser: $(BROWSER_STAMP)

# ReplayWeb.page (npm replaywebpage, pinned, checksum checked) for `osint-capture replay`.
$(REPLAY_STAMP): $(STAMP) scripts/install-replay.sh
	sh scripts/install-replay.sh $(VENV)
	touch $@

demo: install
	$(VENV)/bin/osint-capture demo

test: install
	$(PY) -m pytest -n 2 --dist loadfile

lint: $(STAMP)
	$(VENV)/bin/ruff check osint_capture cases chain_of_custody tests
	$(VENV)/bin/ruff format --check osint_capture cases chain_of_custody tests
	$(VENV)/bin/mypy

bench: install
	$(PY) benchmarks/run.py
	$(PY) benchmarks/verify_bench.py
	$(PY) benchmarks/export_bench.py
	$(PY) benchmarks/timestamp_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
