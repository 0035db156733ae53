# Trainyard — the commands a newcomer types. Every target installs what it needs first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR)

.PHONY: setup setup-python tools test test-images test-unit test-integration test-e2e test-browser rehearse up down demo bench bench-create bench-ml bench-soak bench-quality bench-scale bench-trainer

setup:            ## install pinned Python dependencies into .venv, build the dashboard (skipped when up to date)
	@# The Python packages and the dashboard's build touch nothing in common: both at once.
	@bash scripts/setup.sh & python=$$!; bash scripts/setup_dashboard.sh; dashboard=$$?; \
	  wait $$python && exit $$dashboard

tools:            ## what only the tests need: offline infrastructure scanners (checkov) in their own venv, chromium and the Firebase Auth emulator for the browser tests, MLflow for the import tests
	@if [ -f scripts/setup_checkov.sh ]; then bash scripts/setup_checkov.sh; fi
	@bash scripts/setup_browser_tests.sh
	@bash scripts/setup_mlflow.sh

test: setup tools ## the whole suite in five processes at once (scripts/test_suite.sh): e2e, the trainings on tiny data, the images' pins + unit + security, integration, rehearsal + browser
	@PY=$(PY) bash scripts/test_suite.sh

test-images: setup ## each image's pinned closure resolved against the package index for its own Python and platform
	@$(PY) -m pytest tests/images

test-unit: setup
	@$(PY) -m pytest tests/unit

test-integration: setup tools
	@$(PY) -m pytest tests/integration

test-e2e: setup
	@$(PY) -m pytest tests/e2e

test-browser: setup tools
	@$(PY) -m pytest tests/browser

rehearse: setup   ## the deployment terraform/ describes, assembled and started from its own trees (tests/rehearsal)
	@$(PY) -m pytest tests/rehearsal

up: setup         ## start the local stack (emulators + functions); prints the API URL
	@$(PY) -m scripts.stack up

down:             ## stop exactly what `make up` started
	@$(PY) -m scripts.stack down

demo: setup-python ## start the stack, run a training run end to end, stop the stack
	@$(PY) -m scripts.demo

setup-python:     ## only the pinned Python packages: what `make demo` needs (it stops its stack before anyone could open the dashboard, so it skips the dashboard's build)
	@bash scripts/setup.sh

bench: setup      ## control-plane latency/throughput against the local stack (not a test)
	@$(PY) bench/control_plane.py

bench-create: setup ## create-run p50/p99 in the cloud configuration (GPU pre-flight with delayed quota fakes) beside local (not a test)
	@$(PY) bench/create_latency.py

bench-soak: setup ## N creators + M event streams for K minutes on the local stack: no lost, duplicate or stuck run (not a test)
	@$(PY) bench/soak.py

bench-ml: setup   ## ScaNN vs brute-force serving and training examples/s (not a test; CPU-heavy)
	@$(PY) bench/ml.py

bench-scale: setup  ## each pipeline stage's seconds, rows/s, peak RSS and growth exponent at 100k/1M/5M rows, the Dataflow projection (not a test; long: SIZES=100k:3,1M,5M)
	@nice -n 10 $(PY) bench/scale.py --sizes $(or $(SIZES),100k:3,1M,5M)

bench-quality: setup  ## the no-options run, the tutorial code, most-popular and EASE on MovieLens 100k, MovieLens latest-small and InstEval: recall@10/50/100, ratios, examples/s (not a test; long)
	@$(PY) bench/quality.py

bench-trainer: setup  ## the trainer's examples/s against the machine's matmul bound and the TFRS tutorial code, the input pipeline's share (not a test; REPEATS=3)
	@flock /tmp/trainyard-tfx.lock nice -n 10 $(PY) bench/trainer_speed.py --repeats $(or $(REPEATS),3)
