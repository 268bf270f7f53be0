# make run  — the reference host with the plugin on http://127.0.0.1:8000
# make test — every test
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
HOST_PORT ?= 8000
DB ?= var/host.sqlite3

.PHONY: run test lint install clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[host,dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@mkdir -p $(dir $(DB))
	@echo "Open http://127.0.0.1:$(HOST_PORT)/ — integrations, settings, Raw data → Appeals and goals"
	$(PY) -m hooks.host --db $(DB) --host 127.0.0.1 --port $(HOST_PORT)

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check hooks b24_openlines_plugin tests
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache *.egg-info
