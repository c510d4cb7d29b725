# The two commands a newcomer needs: `make run` and `make test`. Everything else is set up by them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DISCOVERY ?= config-server
PROMETHEUS ?=
TRANSPORT ?= http
QUEUE ?= hazelcast
BROKERS ?= 1
HOSTS ?=
CONSISTENCY ?= available
PYTEST_ARGS ?=
N ?= list
LAB_ARGS ?=

.PHONY: run test setup unit experiment mutate lint clean stop lab

run: setup ## set everything up and run the whole system in the foreground (Ctrl-C stops it); TRANSPORT=grpc: the facade logs over gRPC; QUEUE=kafka [BROKERS=3]: messages go through Kafka; CONSISTENCY=quorum: writes refused (503) with fewer than 2 members; HOSTS=3: three hosts, each a network namespace (labctl net cuts and slows their links)
ifeq ($(QUEUE),kafka)
	$(BIN)/python -m labctl.deps kafka
endif
ifeq ($(DISCOVERY),consul)
	$(BIN)/python -m labctl.deps consul
endif
ifneq ($(PROMETHEUS),)
	$(BIN)/python -m labctl.deps prometheus
endif
ifneq ($(HOSTS),)
	$(BIN)/python -m labctl.deps net
endif
	$(BIN)/labctl run --discovery $(DISCOVERY) --transport $(TRANSPORT) --queue $(QUEUE) --brokers $(BROKERS) \
		--consistency $(CONSISTENCY) \
		$(if $(PROMETHEUS),--prometheus) $(if $(HOSTS),--hosts $(HOSTS))

test: setup ## set everything up (the Kafka broker's jars, the Consul agent, kustomize, Prometheus, Chromium, curl, tmux, nftables, podman and its images too: once per machine), run every test, then the fast mutations (each must be caught)
	$(BIN)/python -m labctl.deps kafka consul kustomize prometheus chromium curl tmux net
	$(BIN)/python -m labctl.containers images
	$(BIN)/pytest $(PYTEST_ARGS)
	$(BIN)/labctl mutate --fast --no-baseline

unit: setup ## only the fast unit tests (no cluster)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

lab: setup ## walk through a lab of the course on its own system: make lab N=3 [LAB_ARGS="--report reports --lang uk"]
ifeq ($(N),5)
	$(BIN)/python -m labctl.deps consul
endif
ifneq ($(findstring --kafka,$(LAB_ARGS)),)
	$(BIN)/python -m labctl.deps kafka
endif
	$(BIN)/labctl lab $(N) $(LAB_ARGS)

experiment: setup ## the msg1..msg10 experiment against a running system
	$(BIN)/labctl experiment

mutate: setup ## break each guarantee's key code in a copy of the repo and show its tests fail, drills included (make test runs the fast ones)
	$(BIN)/labctl mutate

stop: ## stop a system started with `labctl start`
	$(BIN)/labctl stop

lint: setup
	$(BIN)/ruff check .

setup: $(STAMP)
	$(BIN)/python -m labctl.deps hazelcast jmx-exporter

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,tools]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) var .pytest_cache
