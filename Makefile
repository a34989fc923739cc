# Two commands on a fresh machine:  `make run` (the agent)  and  `make test` (ruff and the suite).
#
# `make run` serves config/agent.yaml when it exists, else the demo config/agent.example.yaml, and
# says which; `make config/agent.yaml` makes your own copy (with its own data_dir: data/, where the
# demo keeps data/example). The runtime venv has no test tools; `make test` adds them.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
EXAMPLE := config/agent.example.yaml
CONFIG ?= $(if $(wildcard config/agent.yaml),config/agent.yaml,$(EXAMPLE))

.PHONY: run test lint bench clean

# The agent and its runtime dependencies only (no pytest, ruff or Playwright).
$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(STAMP)

# The test extra on top; redone whenever the runtime install is.
$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

# Your config: the example with data_dir moved from the demo's data/example to data/. Never overwritten.
config/agent.yaml:
	sed 's|^data_dir: \.\./data/example  |data_dir: ../data          |' $(EXAMPLE) > $@.tmp
	grep -q '^data_dir: \.\./data ' $@.tmp || { rm -f $@.tmp; echo "$(EXAMPLE): no 'data_dir: ../data/example' line to change" >&2; exit 1; }
	mv $@.tmp $@
	@echo "wrote $@ (data_dir: data/): edit its libraries, then \`make run\`"

run: $(STAMP)
ifeq ($(CONFIG),$(EXAMPLE))
	@mkdir -p media/movies media/tv
	@echo "make run: serving the demo config $(CONFIG) (data in data/example); \`make config/agent.yaml\` makes your own"
else
	@echo "make run: serving $(CONFIG)"
endif
	@$(BIN)/metarr-agent serve --config $(CONFIG)

test: $(TEST_STAMP)
	$(BIN)/ruff check agent tests bench
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: $(TEST_STAMP)
	$(BIN)/ruff check agent tests bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
