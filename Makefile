# live-relay: `make demo` and `make test` install whatever is missing first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
ARGS   ?=

.PHONY: help deps test-deps chromium turbojpeg redis x11-tools node-deps net-tools servers demo serve test lint format bench clean

help:
	@echo "make demo   - install what is missing, then run the demo (prints a one-time link)"
	@echo "make test   - install test deps, make sure Redis runs, run lint and the whole suite"
	@echo "make serve  - run the relay (pass flags with ARGS='--port 9000 ...')"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.stamp-deps: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.stamp-test: pyproject.toml $(VENV)/.stamp-deps
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

deps: $(VENV)/.stamp-deps
test-deps: $(VENV)/.stamp-test

# Playwright cannot download browsers on a closed network: use the distribution's Chromium.
chromium: deps
	@$(BIN)/python -c "from relay.browser.chromium import find_chromium; find_chromium()" 2>/dev/null \
	  || { echo "Chromium not found: installing Debian's chromium"; \
	       $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }
	@$(BIN)/python -c "from relay.browser.chromium import find_chromium; print('chromium:', find_chromium())"

# libjpeg-turbo decodes screencast frames in ~60% of FFmpeg's time; without it the relay
# falls back to FFmpeg (relay/video/turbojpeg.py).
turbojpeg: deps
	@$(BIN)/python -c "import sys, relay.video.turbojpeg as t; sys.exit(t.library() is None)" 2>/dev/null \
	  || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq libturbojpeg0; }

redis:
	@command -v redis-server >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq redis-server; }
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 \
	  || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
	@for i in 1 2 3 4 5 6 7 8 9 10; do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && exit 0; sleep 0.5; done; \
	  echo "Redis did not come up on 127.0.0.1:6379" >&2; exit 1

demo: deps chromium turbojpeg
	$(BIN)/live-relay demo $(ARGS)

serve: deps turbojpeg
	$(BIN)/live-relay serve $(ARGS)

lint: test-deps
	$(BIN)/ruff check relay tests benchmarks
	$(BIN)/ruff format --check relay tests benchmarks
	$(BIN)/mypy
	$(BIN)/hadolint deploy/Dockerfile

format: test-deps
	$(BIN)/ruff format relay tests benchmarks
	$(BIN)/ruff check --fix relay tests benchmarks

# puppeteer-core (no browser download) for the browserless-compatibility test.
tests/node/node_modules/.stamp: tests/node/package.json
	@command -v npm >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nodejs npm; }
	cd tests/node && npm install --no-audit --no-fund --loglevel=error
	@touch $@

node-deps: tests/node/node_modules/.stamp

# Xvfb, xdotool and xclip: the real-window test types and clicks as a person would.
x11-tools:
	@command -v Xvfb >/dev/null && command -v xdotool >/dev/null && command -v xclip >/dev/null \
	  || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq xvfb xdotool xclip; }

test: test-deps chromium turbojpeg redis x11-tools node-deps net-tools servers lint
	$(BIN)/pytest $(ARGS)

# Slow and lossy links for the benchmarks: tc (tbf) from iproute2, random loss from nftables.
net-tools:
	@command -v tc >/dev/null && command -v nft >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq iproute2 nftables; }

# The real servers of the deployment tests: coturn (TURN over UDP, TCP and TLS, with openssl
# for its test certificate and certutil to make a viewer's browser trust it) and nginx (the
# reverse proxy in deploy/nginx.conf, and the round-robin balancer of the cluster tests).
servers:
	@command -v turnserver >/dev/null && command -v nginx >/dev/null && command -v openssl >/dev/null \
	  && command -v certutil >/dev/null \
	  || { $(SUDO) apt-get update -qq && \
	       DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq coturn nginx-light openssl \
	         libnss3-tools; }

# Every scenario, three pipelines; rewrites the table in benchmarks/README.md (~20 min).
# The slow-link runs need root for a network namespace; without it those rows say skipped.
bench: test-deps chromium turbojpeg net-tools
	$(BIN)/python benchmarks/suite.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info tests/node/node_modules
