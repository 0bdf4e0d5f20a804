# Two commands, each set-up free on a fresh machine:
#   make book   execute every chapter on the tiny profile and build the site (_build/html)
#   make test   lint, unit tests, the book build, and the browser test
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= tiny

.PHONY: book test unit lint format notebooks student chromium clean reference retarget ph2-figure

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name segqual-lite --display-name "segqual-lite"
	@touch $@

# Debian's Chromium for the browser test (no browser download by the test tool).
chromium:
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

book: $(STAMP)
	$(BIN)/python book/build.py --profile $(PROFILE)

lint: $(STAMP)
	$(BIN)/ruff check segqual_lite tests notebooks book benchmarks
	$(BIN)/ruff format --check segqual_lite tests notebooks book benchmarks

test: $(STAMP) chromium lint
	$(BIN)/python -m pytest

# The fast tests only: no book build, no browser (a few minutes on 2 cores).
unit: $(STAMP)
	$(BIN)/python -m pytest -m "not book and not browser"

format: $(STAMP)
	$(BIN)/ruff format segqual_lite tests notebooks book benchmarks
	$(MAKE) notebooks

# Regenerate the committed .ipynb files from their .py sources (outputs stay empty).
notebooks: $(STAMP)
	$(BIN)/jupytext --to ipynb --update notebooks/[0-9][0-9]_*.py

# A fork: `make retarget REPO=https://github.com/me/segqual-lite` writes the URL into
# _config.yml and every chapter's badge and install cell (book/retarget.py).
retarget: $(STAMP)
	@test -n "$(REPO)" || { echo "usage: make retarget REPO=https://github.com/OWNER/NAME"; exit 2; }
	$(BIN)/python book/retarget.py "$(REPO)" --write

# The reference run of book/analysis_plan.md (20 seeds of tiny and the counterfactual:
# about an hour on 2 CPU cores, minutes on a larger machine), into results/reference/.
# Cached models are reused: an interrupted run resumes where it stopped.
# PROFILE=ph2 reads the PH2 database from $(PH2) (beside the checkout unless given).
WORKERS ?= 2
PH2 ?= $(or $(SEGQUAL_PH2),../shared/data/ph2)
reference: $(STAMP)
	SEGQUAL_HOME=_build/artifacts SEGQUAL_PROGRESS=0 SEGQUAL_PH2=$(PH2) $(BIN)/python -m segqual_lite reference \
	  --profile $(PROFILE) --workers $(WORKERS)

# Figure 2 on PH2 (a few lesions, with the citation) for chapter 10, drawn where the
# database is and shipped beside the PH2 reference: a few minutes on 2 CPU cores.
ph2-figure: $(STAMP)
	SEGQUAL_HOME=_build/artifacts SEGQUAL_PROGRESS=0 $(BIN)/python book/ph2_figure.py --data $(PH2)

# Student copies of the chapters, exercise solutions removed, in student/.
student: $(STAMP)
	$(BIN)/python book/student.py --out student

clean:
	rm -rf _build student
