# pycam: `make run` starts the demo, `make test` runs the whole test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test venv bench evaluate clean start stop status

# The virtualenv sees the system's packages only when picamera2 is there (a Pi): its libcamera
# bindings come from apt and cannot be pip-installed.
# pycam itself is installed editable (pyproject.toml): `config` and `app` import from anywhere.
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@if $(PYTHON) -c "import picamera2" 2>/dev/null; then \
	  $(PYTHON) -m venv --system-site-packages $(VENV); else $(PYTHON) -m venv $(VENV); fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

venv: $(VENV)/.installed

## The demo: the camera daemon armed on the bundled sample clip, events printed, with its own
## Redis and data folder, both removed on Ctrl-C (scripts/demo.sh).
run: venv
	@scripts/demo.sh

## Every process under nohup (README, Usage); systemd is deploy/install_systemd.sh.
start: venv
	@scripts/pycam start

stop:
	@scripts/pycam stop

status:
	@scripts/pycam status

## The whole test suite (installs redis-server and ffmpeg first when they are missing).
test: venv
	@scripts/ensure_packages.sh
	$(PY) -m pytest

## Detection quality and speed against ../shared/data, beside the original pipeline.
bench: venv
	$(PY) -m bench.detection

evaluate: venv
	EVAL_PY=$(PY) $(PY) ../shared/tools/evaluate.py ../shared/data/manifest.json --project .

clean:
	rm -rf $(VENV) .pytest_cache
