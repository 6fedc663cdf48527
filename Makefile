# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make run    -> the dashboard on the shipped sample scene (http://localhost:8501)
#   make test   -> the whole test suite (installs Debian's chromium for the browser tests if missing)
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: run test venv predict-sample bench clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) -m streamlit run app.py

test: $(STAMP)
	bash scripts/ensure_chromium.sh
	$(PY) -m pytest -q

# The CLI on the sample scene with the shipped weights (outputs in outputs/sample/).
predict-sample: $(STAMP)
	$(PY) -m core predict --image assets/sample/sample_rgbn.tif --out outputs/sample --overwrite
	$(PY) -m core evaluate --pred outputs/sample/crop_mask.tif --labels assets/sample/sample_cdl.tif --label-map cdl --overwrite

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) outputs .pytest_cache
