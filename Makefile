# Two main commands: `make test` (create .venv with uv, run the whole pytest suite on a real Kafka broker + Postgres) and `make demo` (create .venv, run the end-to-end demo).
#
# Everything runs from the uv workspace venv at .venv/ (uv sync --all-packages --frozen).
# `setup` re-syncs only when uv.lock or a pyproject.toml changed (stamp file in .venv/).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

VENV := .venv
STAMP := $(VENV)/.uv-synced
UV := $(or $(shell command -v uv 2>/dev/null),python3 -m uv)
PYPROJECTS := pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml jobs/*/pyproject.toml tools/*/pyproject.toml)
PYTEST_ARGS ?=
LINT_PATHS := libs services jobs tools tests benchmarks
# tests/*/ have no __init__.py and several conftest.py: explicit package bases + the src dirs
# on MYPYPATH give every file one unique module name.
SPACE := $(subst x, ,x)
MYPYPATH := $(subst $(SPACE),:,$(wildcard libs/*/src services/*/src jobs/*/src tools/*/src))

.PHONY: setup system-deps test lint demo up down k8s-check k8s-e2e bench evaluate

setup: $(STAMP)

# JDK + Maven (Kafka), Postgres, redis-server, npm: installs only what is missing (apt).
system-deps:
	@tools/system-deps.sh

$(STAMP): uv.lock $(PYPROJECTS)
	@command -v uv >/dev/null || python3 -m uv --version >/dev/null 2>&1 || \
		python3 -m pip install --quiet uv || python3 -m pip install --quiet --user --break-system-packages uv
	$(UV) sync --all-packages --frozen
	@touch $@

test: system-deps setup
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check $(LINT_PATHS)
	MYPYPATH=$(MYPYPATH) $(VENV)/bin/mypy --explicit-package-bases $(LINT_PATHS)

demo: system-deps setup
	$(VENV)/bin/airline-demo

up: system-deps setup
	$(VENV)/bin/airline-stack up
	$(VENV)/bin/airline-demo --watch

down: setup
	$(VENV)/bin/airline-stack down

# The engine's own policy code in closed loop with the demand simulator, in process (no broker):
# the baseline and every policy on the same customers. EVALUATE_* and PRODUCER_* demand knobs.
evaluate: setup
	$(VENV)/bin/airline-evaluate

k8s-check: setup
	$(VENV)/bin/pytest tests/k8s -m k8s $(PYTEST_ARGS)

# The four images built with podman from ./Dockerfile (offline, from a wheelhouse of uv.lock),
# the chart rendered and its workloads played as containers against a real Kafka and Postgres:
# the pipeline reconciled end to end (tests/k8s/test_k8s_containers.py). About 3 min cold.
k8s-e2e: system-deps setup
	$(VENV)/bin/pytest tests/k8s/test_k8s_containers.py -m containers $(PYTEST_ARGS)

# Every stage against its peer in one run, on one throwaway Kafka broker and Postgres (see
# benchmarks/__main__.py): the table on stdout and in bench/results/latest.{json,md}.
# BENCH_ARGS: e.g. --rounds 5, --stages engine,latency, --quick (a smoke run of the harness).
BENCH_ARGS ?=
bench: system-deps setup
	$(VENV)/bin/python -m benchmarks $(BENCH_ARGS)
