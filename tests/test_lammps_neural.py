"""A two-hop message-passing model in LAMMPS: finite differences, ranks, NVE."""

from typing import Dict

import numpy as np
import pytest
import torch

import multiscale
from lmp_runs import DUMP, THERMO, relative, run_ok
from multiscale.potentials import MessagePassingPotential

pytestmark = pytest.mark.mpi


@pytest.fixture(scope="module")
def mp_model(model_dir):
    model = MessagePassingPotential(["Si", "C"], cutoff=3.6, hops=2, features=16, seed=3)
    return multiscale.export(model, model_dir / "mp2.pt")


def cell(pair_lines, extra=(), size=3, box="prism 0 {n} 0 {n} 0 {n} 0.4 -0.3 0.2"):
    n = size
    return [
        "units metal", "atom_style atomic", "atom_modify map array", "lattice diamond 5.431",
        f"region box {box.format(n=n)}", "create_box 2 box", "create_atoms 1 box",
        "set type 1 type/fraction 2 0.3 4567", "mass * 28.0", "displace_atoms all random 0.1 0.1 0.1 99 units box",
        *pair_lines, *extra]


def test_ase_and_lammps_agree(tmp_path, mp_model):
    """The same model through the ASE calculator and LAMMPS on an orthogonal box (no ghosts in ASE)."""
    lines = cell([f"pair_style multiscale {mp_model}", "pair_coeff * * Si C"], box="block 0 {n} 0 {n} 0 {n}")
    res = run_ok("\n".join(lines + DUMP + ["write_data data.lmp", "run 0"] + THERMO) + "\n", tmp_path)
    from ase.io import read
    atoms = read(tmp_path / "data.lmp", format="lammps-data", atom_style="atomic")
    atoms.symbols = ["Si" if t == 1 else "C" for t in atoms.get_array("type")]
    atoms.wrap()  # ASE unwraps by image flags; the dump holds wrapped positions
    atoms = atoms[np.lexsort(np.round(atoms.positions, 4).T[::-1])]  # the order lmp_runs.read uses
    atoms.calc = multiscale.MultiscaleCalculator(mp_model)
    assert atoms.get_potential_energy() == pytest.approx(res["pe"], rel=1e-10)
    assert relative(atoms.get_forces(), res["forces"]) <= 1e-9


def test_numdiff_forces_and_virial(tmp_path, mp_model):
    lines = cell([f"pair_style multiscale {mp_model}", "pair_coeff * * Si C"], size=2)
    lines += ["fix nd all numdiff 1 1e-5", "fix ndv all numdiff/virial 1 1e-5",
              "compute pvir all pressure NULL virial",
              "dump n all custom 1 numdiff.txt id fx fy fz f_nd[1] f_nd[2] f_nd[3]",
              "dump_modify n sort id format float %.17g", "run 0",
              'print "$(c_pvir[1]:%.17g) $(c_pvir[2]:%.17g) $(c_pvir[3]:%.17g) $(c_pvir[4]:%.17g) '
              '$(c_pvir[5]:%.17g) $(c_pvir[6]:%.17g)" file pvir.txt screen no',
              'print "$(f_ndv[1]:%.17g) $(f_ndv[2]:%.17g) $(f_ndv[3]:%.17g) $(f_ndv[4]:%.17g) '
              '$(f_ndv[5]:%.17g) $(f_ndv[6]:%.17g)" file ndv.txt screen no']
    from lmp_runs import run
    proc = run("\n".join(lines) + "\n", tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    data = np.loadtxt(tmp_path / "numdiff.txt", skiprows=9)
    forces, numdiff = data[:, 1:4], data[:, 4:7]
    assert np.abs(forces).max() > 5e-3
    assert relative(numdiff, forces) <= 1e-6
    pvir, ndv = np.loadtxt(tmp_path / "pvir.txt"), np.loadtxt(tmp_path / "ndv.txt")
    ndv = ndv[[0, 1, 2, 5, 4, 3]]  # numdiff/virial is Voigt (xx yy zz yz xz xy); pressure is xy xz yz
    assert relative(ndv, pvir) <= 1e-5


def test_one_and_four_ranks_agree(tmp_path, mp_model):
    lines = cell([f"pair_style multiscale {mp_model}", "pair_coeff * * Si C"], size=4)
    text = "\n".join(lines + DUMP + ["run 0"] + THERMO) + "\n"
    one = run_ok(text, tmp_path / "r1", ranks=1)
    four = run_ok(text, tmp_path / "r4", ranks=4)
    assert abs(four["pe"] - one["pe"]) <= 1e-11 * abs(one["pe"])
    for key in ("forces", "energies", "stresses", "pressure"):
        assert relative(four[key], one[key]) <= 1e-10, key


@pytest.mark.slow
def test_nve_energy_drift_is_bounded(tmp_path, mp_model):
    lines = cell([f"pair_style multiscale {mp_model}", "pair_coeff * * Si C"], size=3)
    lines += ["velocity all create 300.0 1234 mom yes rot yes", "fix nve all nve", "timestep 0.0005",
              'fix out all print 50 "$(step) $(pe:%.15g) $(ke:%.15g) $(etotal:%.15g)" file traj.txt screen no',
              "run 1000"]
    from lmp_runs import run
    proc = run("\n".join(lines) + "\n", tmp_path, ranks=2)
    assert proc.returncode == 0, proc.stdout[-3000:]
    traj = np.loadtxt(tmp_path / "traj.txt")
    n_atoms = 216
    drift = np.abs(traj[:, 3] - traj[0, 3]).max() / n_atoms
    fluctuation = np.ptp(traj[:, 1]) / n_atoms
    assert fluctuation > 10 * drift  # the dynamics moves, the total energy does not
    assert drift < 1e-4  # eV/atom over 1000 steps of 0.5 fs


class ChargeSpinProbe(torch.nn.Module):
    """Per-atom energy 0.01 q + 0.001 (2S+1) eV: shows what the engine passed."""

    def forward(self, species: torch.Tensor, edge_index: torch.Tensor, edge_vectors: torch.Tensor,
                n_local: int, charge: float = 0.0, spin: int = 1) -> Dict[str, torch.Tensor]:
        base = 0.0 * edge_vectors.sum()
        e = torch.full((n_local,), 0.01 * charge + 0.001 * spin, dtype=edge_vectors.dtype) + base
        return {"energies": e}


def test_charge_and_spin_reach_the_model(tmp_path):
    meta = multiscale.ModelMetadata(name="probe", elements=("Si",), cutoff=3.0, uses_charge=True,
                                    uses_spin=True)
    probe = multiscale.export(ChargeSpinProbe(), tmp_path / "probe.pt", metadata=meta)
    lines = ["units metal", "atom_style atomic", "lattice diamond 5.431", "region box block 0 2 0 2 0 2",
             "create_box 1 box", "create_atoms 1 box", "mass 1 28.0",
             f"pair_style multiscale {probe} charge -2 spin 3", "pair_coeff * * Si", "run 0",
             'print "$(pe:%.15g)" file pe.txt screen no']
    from lmp_runs import run
    proc = run("\n".join(lines) + "\n", tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert float((tmp_path / "pe.txt").read_text().split()[-1]) == pytest.approx(64 * (-0.02 + 0.003))
