# Two commands on a fresh machine:  `make run` (the agent, example config)  and  `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	mkdir -p media/movies media/tv
	$(BIN)/metarr-agent serve --config config/agent.example.yaml

test: $(STAMP)
	$(BIN)/ruff check agent tests bench
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check agent tests bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
