# ranksearch — the two commands a newcomer needs are `make run` and `make test`.
# Japanese documents: `make run MODEL=multilingual` (see README, "Japanese and other languages").
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
DATA    ?= ./data
LISTEN  ?= 127.0.0.1:50051
MODEL   ?=
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install run test test-all test-deps bench proto clean bundle

install: $(STAMP)

# torch is installed first, pinned to the CPU wheel, so that nothing later can pull
# a CUDA build; pyproject.toml pins the same version. `make install TORCH=cuda` brings
# the CUDA build of the same version instead (PyPI's Linux wheel, with its nvidia-*
# libraries; pip's local configuration, which serves the CPU wheel, is ignored for it),
# for servers with an NVIDIA GPU (`device: cuda`, see docs/PERFORMANCE.md).
TORCH   ?= cpu
TORCH_PIP_cpu  :=
TORCH_PIP_cuda := --isolated
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@case "$(TORCH)" in cpu|cuda) ;; *) echo "TORCH must be cpu or cuda, got $(TORCH)"; exit 1;; esac
	$(BIN)/python -m pip install --quiet $(TORCH_PIP_$(TORCH)) torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: install
	$(BIN)/ranksearch serve --data-dir $(DATA) --listen $(LISTEN) $(if $(MODEL),--model $(MODEL))

test: install test-deps
	$(BIN)/python -m pytest -q -m "not slow"

test-all: install test-deps
	$(BIN)/python -m pytest -q

# The report-rendering test drives a real headless Chromium (Debian's package); the
# man-page corpus tests read Debian's Japanese and English manual pages (developers'
# sections 2/3 and, for extra fine-tuning pairs, the users' sections); the
# alert-rule test runs promtool (Debian's prometheus package).
TEST_PACKAGES := chromium manpages-ja-dev manpages-ja manpages-dev
test-deps:
	@missing=$$(for p in $(TEST_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages: run 'sudo apt-get install -y" $$missing"' (tests need them)"; exit 1; fi; fi
	@command -v promtool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  else echo "promtool is missing: run 'sudo apt-get install -y prometheus' (the alert-rule test needs it)"; exit 1; fi; }

# Benchmarks that run on their own defaults (ab_simulation.py needs the results folder
# of an eval run, see its docstring; the others take options, see README "Develop").
BENCHES := encoder_throughput batching_ceiling index_search service_latency hybrid_search drain live_ab store_compare
bench: install
	for b in $(BENCHES); do $(BIN)/python benchmarks/$$b.py || exit 1; done

proto: install
	$(BIN)/python -m ranksearch.proto.generate

# Offline install bundle (wheelhouse + model + configs + install.sh); see deploy/RUNBOOK.md.
bundle: install
	$(BIN)/python deploy/build_bundle.py

clean:
	rm -rf $(VENV) build *.egg-info
