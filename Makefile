# make run  — the reference host with the plugin on http://127.0.0.1:8000
# make test — every test
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
HOST_PORT ?= 8000
SANDBOX_PORT ?= 8100
DB ?= var/host.sqlite3
HOST_URL := http://127.0.0.1:$(HOST_PORT)
SANDBOX_URL := http://127.0.0.1:$(SANDBOX_PORT)

.PHONY: run test lint install clean bench soak

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[host,dev]'
	touch $(STAMP)

install: $(STAMP)

# The sandbox Bitrix24 portal runs beside the host; the host trusts it as an OAuth server.
run: $(STAMP)
	@mkdir -p $(dir $(DB))
	@echo "Analytics host:        $(HOST_URL)/"
	@echo "Sandbox Bitrix24:      $(SANDBOX_URL)/sandbox/  (local application: $(SANDBOX_URL)/sandbox/app)"
	@echo "Try it: add an integration, enter the sandbox application's client id and secret and the"
	@echo "portal $(SANDBOX_URL), switch it on, save, press 'Подключить Битрикс24' and allow; paste the"
	@echo "Webhook URL into the sandbox's outgoing webhook page; start a chat in the sandbox; see it in"
	@echo "$(HOST_URL)/raw/appeals"
	@set -e; \
	$(PY) -m b24_openlines_plugin.sandbox --host 127.0.0.1 --port $(SANDBOX_PORT) \
		--redirect-uri $(HOST_URL)/oauth2/callback & sandbox=$$!; \
	trap 'kill $$sandbox 2>/dev/null || true' EXIT INT TERM; \
	B24_OAUTH_SERVERS=$(SANDBOX_URL) $(PY) -m hooks.host --demo --db $(DB) --host 127.0.0.1 --port $(HOST_PORT)

test: $(STAMP)
	$(PY) -m pytest -q

# make bench — a burst of 1,000 chats under Bitrix24's limit (2/s, burst 50), the same records
# through fast_bitrix24 and b24pysdk, and peak memory at 1,000 vs 10,000 chats (docs/benchmarks.md);
# make bench BENCH_ARGS="--limit enterprise" (5/s, burst 250), "--limit off", "--chats N".
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[host,dev,bench]'
	$(PY) -m tests.bench --compare-growth $(BENCH_ARGS)

# make soak — 1,000 chats through a faulty sandbox (20% of webhooks lost, 10% of REST calls
# failing, tokens expiring, the host restarted), once with offline events and once without;
# prints what arrived against what Bitrix24 holds. SOAK_ARGS="--chats N --drop 0.3 ..."
soak: $(STAMP)
	$(PY) -m tests.soak $(SOAK_ARGS)
	$(PY) -m tests.soak --no-offline $(SOAK_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check hooks b24_openlines_plugin tests
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache *.egg-info
