# make run  — the reference host with the plugin on http://127.0.0.1:8000
# make test — every test
# make cluster — the scaled-out host, every part a process: PostgreSQL, the sandbox, the web
#                process and 3 workers (tests/cluster.py); Ctrl+C stops them all
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
HOST_PORT ?= 8000
SANDBOX_PORT ?= 8100
DB ?= var/host.sqlite3
HOST_URL := http://127.0.0.1:$(HOST_PORT)
SANDBOX_URL := http://127.0.0.1:$(SANDBOX_PORT)
SOAK_ARGS ?=
MULTI_PORTAL_ARGS ?=
CLUSTER_ARGS ?=
FUZZ_ARGS ?=

.PHONY: run test lint install clean bench soak soak-cluster cluster fuzz system-deps messages messages-host \
	messages-plugin

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[host,dev]'
	touch $(STAMP)

install: $(STAMP)

# The sandbox Bitrix24 portal runs beside the host; the host trusts it as an OAuth server.
run: $(STAMP)
	@mkdir -m 700 -p $(dir $(DB))
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

# What the tests need from Debian, installed when missing (as root, as on CI): Chromium for the
# browser tests, PostgreSQL for the second backend's tests (they start a throwaway server).
system-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		echo "Installing$$missing from Debian's packages"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

test: $(STAMP) system-deps
	$(PY) -m pytest -q

# make bench — a burst of 1,000 chats under Bitrix24's limit (2/s, burst 50), the same records
# through fast_bitrix24 and b24pysdk, and peak memory at 1,000 vs 10,000 chats (docs/benchmarks.md);
# make bench BENCH_ARGS="--limit enterprise" (5/s, burst 250), "--limit off", "--chats N".
# Then 50 portals x 40 chats on PostgreSQL with 1 and 2 workers side by side
# (MULTI_PORTAL_ARGS="--portals N --chats-per-portal N --seed N").
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[host,dev,bench]'
	$(PY) -m tests.bench --compare-growth $(BENCH_ARGS)
	$(PY) -m tests.bench --multi-portal $(MULTI_PORTAL_ARGS)

# make soak — 1,000 chats through a faulty sandbox (20% of webhooks lost, 10% of REST calls
# failing, tokens expiring, the host restarted, 30 dialogs answered and closed while each of the
# first catch-up rounds walks them), once with offline events and once without;
# prints what arrived against what Bitrix24 holds (and which dialogs are missing).
# SOAK_ARGS="--chats N --drop 0.3 --churn N --seed N --seeds 5 ..." (--seeds: seeds in a row)
soak: $(STAMP)
	$(PY) -m tests.soak $(SOAK_ARGS)
	$(PY) -m tests.soak --no-offline $(SOAK_ARGS)

# make soak-cluster — the same soak against real processes: PostgreSQL, the sandbox, the web
# process (killed once) and 3 workers (one SIGKILLed every 20 s), PostgreSQL crashed once
# (pg_ctl restart -m immediate); logs in var/soak-cluster/. SOAK_ARGS as for make soak, plus
# "--workers N --kill-every S --chaos-seconds S --schedule-seconds S".
soak-cluster: $(STAMP)
	$(PY) -m tests.soak --cluster $(SOAK_ARGS)
	$(PY) -m tests.soak --cluster --no-offline $(SOAK_ARGS)

# make fuzz — property-based requests to every public route of the host and the sandbox run as
# processes (tests/fuzz): for each seed a fresh pair, 1,000 requests per route; fails on a 5xx, a
# broken connection or a refused request that wrote; prints the answers per route.
# FUZZ_ARGS="--examples N --seed N --seeds N" (default 1000, 1, 3); make test runs 60 per route.
fuzz: $(STAMP)
	$(PY) -m tests.fuzz $(FUZZ_ARGS)

# make cluster — PostgreSQL in var/pg on port 55432 (Debian's package installed when missing;
# reused when it already runs), the sandbox on $(SANDBOX_URL), the web process on $(HOST_URL)
# (--worker none) and 3 workers (python -m hooks.host worker); the host key is made once in
# var/cluster.key. CLUSTER_ARGS="--workers N --schedule-seconds S --pg-port P".
cluster: $(STAMP)
	$(PY) -m tests.cluster --dir var --web-port $(HOST_PORT) --sandbox-port $(SANDBOX_PORT) $(CLUSTER_ARGS)

# make messages — after changing the words of the host (hooks/host: gettext/ngettext/N_ in Python,
# _/ngettext/{% trans %} in templates) or of the plugin (b24_openlines_plugin: _/ngettext from its
# i18n module): extract each into its own template (hooks/host/locale/messages.pot,
# b24_openlines_plugin/locale/b24_openlines.pot), add the new messages to its Russian and English
# catalogs (translate them there: tests/test_i18n.py refuses an empty or fuzzy one), then
# `make messages` again compiles the .mo files the host and the plugin read (they are committed,
# so installing needs no build step). `make messages-host` or `make messages-plugin`: one of them.
# $(call catalog,<sources>,<domain>)
define catalog
	$(VENV)/bin/pybabel -q extract -F babel.cfg --add-location=file --sort-by-file \
		--project=b24-openlines --copyright-holder=b24-openlines -o $(1)/locale/$(2).pot $(1)
	for language in ru en; do \
		$(VENV)/bin/pybabel -q update -D $(2) --ignore-obsolete --init-missing \
			-i $(1)/locale/$(2).pot -d $(1)/locale -l $$language || exit 1; \
	done
	$(VENV)/bin/pybabel compile --statistics -D $(2) -d $(1)/locale
endef
messages: messages-host messages-plugin
messages-host: $(STAMP)
	$(call catalog,hooks/host,messages)
messages-plugin: $(STAMP)
	$(call catalog,b24_openlines_plugin,b24_openlines)

lint: $(STAMP)
	$(VENV)/bin/ruff check hooks b24_openlines_plugin tests
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache *.egg-info
