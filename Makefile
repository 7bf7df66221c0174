# The two commands: `make demo` and `make test`. Each sets up .venv from nothing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH := torch==2.13.0

.PHONY: demo test test-slow bench lint format docs pretrained clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[all]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/meta-rl demo

# One pytest worker per core (pytest-xdist): every test keeps to its own tmp_path.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -n auto -m slow

# Speed figures (a script, not a test): batched envs, wrappers, SB3, mapping latency.
bench: $(STAMP)
	$(BIN)/python -m meta_rl.benchmarks.speed

# The documentation site (MkDocs, API reference from the docstrings) into site/; --strict
# fails on a broken link or a reference that does not resolve.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Remakes the mappings shipped in meta_rl/pretrained/ (5 to 11 minutes each here).
pretrained: $(STAMP)
	$(BIN)/meta-rl train Pendulum --inference --out meta_rl/pretrained/pendulum.safetensors
	$(BIN)/meta-rl train Pendulum --objective rl --out meta_rl/pretrained/pendulum-rl.safetensors
	$(BIN)/meta-rl train CartPole --inference --out meta_rl/pretrained/cartpole.safetensors
	$(BIN)/meta-rl train Acrobot --inference --out meta_rl/pretrained/acrobot.safetensors
	$(BIN)/meta-rl train MountainCarContinuous --inference --out meta_rl/pretrained/mountaincarcontinuous.safetensors

clean:
	rm -rf $(VENV) build site *.egg-info
