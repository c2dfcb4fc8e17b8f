"""The built wheel carries the LAMMPS plugin and works outside the checkout.

`pip wheel .` (scikit-build-core compiling lammps_plugin/) gives a wheel; it is installed
into a second, fresh virtual environment that reuses this one's installed dependencies
through a .pth file (the cheapest honest fresh environment: no multiscale, no checkout on
its path, no `make`), and that environment's `multiscale lmp` runs examples/lammps/in.silicon
on 2 ranks with the plugin from the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.mpi, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def check(cmd: list, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    check([sys.executable, "-m", "pip", "wheel", ROOT, "--no-build-isolation", "--no-deps",
           "--disable-pip-version-check", "-q", "-w", out], cwd=out)
    (built,) = out.glob("multiscale-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel) -> Path:
    """A new venv with the wheel installed; its other dependencies are this venv's."""
    env = tmp_path_factory.mktemp("venv2")
    check([sys.executable, "-m", "venv", "--without-pip", env])
    site = Path(check([env / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
                .stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    check([sys.executable, "-m", "pip", "--python", env / "bin" / "python", "install", "--no-deps",
           "--no-index", "--force-reinstall", "--disable-pip-version-check", "-q", wheel])
    return env


def test_wheel_contains_the_plugin_and_the_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "multiscale/lib/multiscaleplugin.so" in names
    assert "multiscale/lib/libmultiscale_ops.so" in names     # the native operators
    assert "multiscale/data/si_ani.pt" in names
    assert "multiscale_openmm/__init__.py" in names
    assert not [n for n in names if "__pycache__" in n or "_run/" in n]


def test_installed_wheel_uses_its_own_plugin(venv, tmp_path):
    probe = ("from multiscale.engines.lammps import plugin_path, new_lammps\n"
             "from multiscale.model import native_ops\n"
             "print(plugin_path(), native_ops.LIBRARY, native_ops.load())\n"
             "lmp = new_lammps(cmdargs=['-log', 'none', '-screen', 'none', '-nocite'])\n"
             "print(lmp.has_style('pair', 'multiscale'))\n")
    done = check([venv / "bin" / "python", "-c", probe], cwd=tmp_path)
    path, ops, ops_loaded, loaded = done.stdout.split()[-4:]
    assert Path(path).is_relative_to(venv) and loaded == "True", done.stdout
    assert Path(ops).is_relative_to(venv) and ops_loaded == "True", done.stdout


def test_installed_wheel_runs_the_silicon_example_on_two_ranks(venv, tmp_path):
    shutil.copy(ROOT / "examples" / "lammps" / "in.silicon", tmp_path)
    multiscale = venv / "bin" / "multiscale"
    check([multiscale, "export-reference", "sw", "--lammps-file", "Si.sw", "--elements", "Si",
           "-o", "si_sw.pt"], cwd=tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("LAMMPS_PLUGIN_PATH", "LD_LIBRARY_PATH")}
    done = check([BIN / "mpiexec", "-n", 2, multiscale, "lmp", "-in", "in.silicon", "-var", "steps", 100,
                  "-log", "log.lammps"], cwd=tmp_path, env={**env, "OMP_NUM_THREADS": "1"})
    log = (tmp_path / "log.lammps").read_text()
    assert f"Loaded 1 plugins from {venv}" in log  # the wheel's plugin, not the checkout's
    assert "1 by 1 by 2 MPI processor grid" in log
    assert "Loop time of" in log and "pair_style      multiscale si_sw.pt" in log
    relaxed = [line for line in done.stdout.splitlines() if line.startswith("relaxed energy per atom")]
    assert abs(float(relaxed[-1].split()[-2]) + 4.3366) < 2e-3  # SW silicon, eV/atom
