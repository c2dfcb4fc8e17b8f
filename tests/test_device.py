"""Where models run: the CPU by default, a GPU on request (`device cuda`), and a clear error in
every engine when the GPU asked for is not there.  The GPU's own results are checked by
benchmarks/gpu_check.py, which runs here as a dry run on the CPU and for real where torch sees
a GPU."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ase.build import bulk

import multiscale
from lmp_runs import run
from multiscale.model.device import DeviceError, resolve
from multiscale.potentials import LennardJones
from test_lammps_errors import assert_lammps_error

ROOT = Path(__file__).resolve().parents[1]
HAVE_GPU = torch.cuda.is_available()
no_gpu_only = pytest.mark.skipif(HAVE_GPU, reason="checks the error for a missing GPU; this machine has one")
NO_GPU_WORDS = "torch sees no CUDA GPU on this machine"


@pytest.fixture(scope="module")
def lj(model_dir):
    return multiscale.export(LennardJones(["Ar"], 0.0104, 3.4, 6.0), model_dir / "lj_device.pt")


@pytest.mark.parametrize("spelling", ["gpu", "cuda:x", "mps"])
def test_a_device_that_is_no_device_is_named(spelling):
    with pytest.raises(DeviceError, match="device must be 'cpu', 'cuda' or 'cuda:N'"):
        resolve(spelling)


def test_cpu_is_the_default():
    assert resolve(None) == resolve("cpu") == torch.device("cpu")


@no_gpu_only
@pytest.mark.parametrize("spelling", ["cuda", "cuda:0", "cuda:1"])
def test_a_missing_gpu_is_an_error_not_a_fall_back(spelling):
    with pytest.raises(DeviceError, match=NO_GPU_WORDS):
        resolve(spelling)


@no_gpu_only
def test_ase_calculator_refuses_a_missing_gpu(lj):
    with pytest.raises(DeviceError, match=f"device 'cuda' asked for, but {NO_GPU_WORDS}"):
        multiscale.MultiscaleCalculator(lj, device="cuda")


def test_ase_calculator_on_the_cpu_by_name_equals_the_default(lj):
    atoms = bulk("Ar", "fcc", 5.26, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=1)
    energies = []
    for device in (None, "cpu"):
        atoms.calc = multiscale.MultiscaleCalculator(lj, device=device)
        energies.append(atoms.get_potential_energy())
    assert energies[0] == energies[1] and abs(energies[0]) > 0.1


@no_gpu_only
def test_compiling_for_a_missing_gpu_says_so(tmp_path, lj):
    out = tmp_path / "lj_cuda.pt2"
    proc = subprocess.run([sys.executable, "-m", "multiscale.cli", "compile", str(lj), "-o", str(out),
                           "--device", "cuda"], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert f"cannot compile lj_cuda.pt2 for that device: device 'cuda' asked for, but {NO_GPU_WORDS}" in proc.stderr
    assert not out.exists()


def argon(pair_lines):
    return "\n".join(["units metal", "atom_style atomic", "lattice fcc 5.26", "region box block 0 3 0 3 0 3",
                      "create_box 1 box", "create_atoms 1 box", "mass * 39.9", *pair_lines]) + "\n"


@pytest.mark.mpi
@pytest.mark.parametrize("keyword,words", [
    ("device gpu", "device must be cpu, cuda or cuda:N (N = 0, 1, ...), got gpu"),
    pytest.param("device cuda", f"device cuda asked for, but {NO_GPU_WORDS}", marks=no_gpu_only),
    pytest.param("device cuda:1", f"device cuda:1 asked for, but {NO_GPU_WORDS}", marks=no_gpu_only),
])
def test_lammps_device_errors(tmp_path, lj, keyword, words):
    proc = run(argon([f"pair_style multiscale {lj} {keyword}", "pair_coeff * * Ar", "run 0"]), tmp_path)
    assert_lammps_error(proc, words)


@pytest.mark.mpi
def test_lammps_cannot_turn_cuda_on_after_a_cpu_run(tmp_path, lj):
    """torch settles whether CUDA exists at its first CUDA query; the plugin loads CUDA only for
    `device cuda`, so a run that used the CPU first is told where to put the keyword."""
    proc = run(argon([f"pair_style multiscale {lj}", "pair_coeff * * Ar", "run 0",
                      f"pair_style multiscale {lj} device cuda", "pair_coeff * * Ar", "run 0"]), tmp_path)
    assert_lammps_error(proc, "give `device cuda` on the first pair_style multiscale line of the run")


@pytest.mark.mpi
def test_lammps_logs_where_the_model_runs(tmp_path, lj):
    proc = run(argon([f"pair_style multiscale {lj} device cpu", "pair_coeff * * Ar", "run 0"]), tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "computing in float64 on cpu" in proc.stdout


@pytest.mark.slow
@pytest.mark.mpi
def test_gpu_check_script(tmp_path):
    """benchmarks/gpu_check.py end to end: on a GPU where there is one, else its dry run with
    the CPU in the GPU's place (every code path but CUDA's, so the script cannot rot unseen)."""
    report_file = tmp_path / "gpu.json"
    device = "cuda" if HAVE_GPU else "cpu"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", device,
                           "--sizes", "3", "--json", str(report_file)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(report_file.read_text())
    assert report["failed"] == [] and report["device"] == ("cuda:0" if HAVE_GPU else "cpu")
    checked = [v for part in ("ase", "lammps", "openmm") for v in report[part].values() if isinstance(v, dict)]
    assert len(checked) == 5 + 10 + 3 and all(v["ok"] for v in checked)
    assert report["benchmark"]["216 atoms"]["speed-up .pt2"] > 0
