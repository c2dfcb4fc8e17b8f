"""Per-molecule charges: `pair_style multiscale MODEL charge molecule` with atom_style full
conserves each molecule's total charge (read from the data file) separately, on 1-4 ranks,
also for molecules that span ranks, and equals the grouped evaluation in Python."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

import multiscale
from charged_models import TwoPassCharges
from lmp_runs import DUMP, THERMO, relative, run, run_ok
from multiscale.engines import neighbors
from multiscale.engines.scatter import edge_forces
from multiscale.model.reductions import grouped_forward
from multiscale.potentials.aimnet2 import AIMNet2Potential

ELEMENTS = ["H", "C", "N", "O"]
LENGTH = 12.0
# (molecule, total charge, centre as fractions of the box): CH3OH straddles x = L/2 (the
# boundary of 2 and 4 slabs), NH3 x = L/3 (3 slabs), CH4 x = 3L/4 (4 slabs)
MOLECULES = [("CH3OH", 1, (0.5, 0.25, 0.3)), ("NH3", -1, (1 / 3, 0.75, 0.7)),
             ("H2O", 0, (0.1, 0.5, 0.55)), ("CH4", 1, (0.75, 0.3, 0.8)), ("H2O", -1, (0.9, 0.8, 0.2))]


def _model():
    return AIMNet2Potential(ELEMENTS, rc_s=3.0, nshifts=6, nfeature=4, ncomb_v=4,
                            hidden=((16,), (16,), (16,)), aim_size=16, out_hidden=(8,),
                            coulomb="dsf", dsf_rc=4.0, cutoff=4.0, seed=3).double()


@pytest.fixture(scope="module")
def model_file(model_dir):
    return multiscale.export(_model(), model_dir / "aimnet2_molecules.pt")


def box():
    """The molecules in a periodic box; mol-id 1..5, the total charge on each molecule's
    first atom (the model redistributes it)."""
    parts, mol, charges = [], [], []
    for k, (name, q, centre) in enumerate(MOLECULES):
        m = molecule(name)
        m.positions += np.array(centre) * LENGTH - m.get_center_of_mass()
        parts.append(m)
        mol += [k + 1] * len(m)
        charges += [float(q)] + [0.0] * (len(m) - 1)
    atoms = sum(parts[1:], parts[0])
    atoms.cell, atoms.pbc = [LENGTH, LENGTH, LENGTH], True
    atoms.wrap()
    atoms.arrays["mol-id"] = np.array(mol)
    atoms.set_initial_charges(charges)
    return atoms


def reference(path, atoms):
    """Energy, forces, charges from the grouped evaluation (one group per molecule, each at
    its lowest multiplicity), Python side."""
    loaded = multiscale.load(path)
    species = torch.tensor([ELEMENTS.index(s) for s in atoms.get_chemical_symbols()])
    edge_index, vectors = neighbors.edges(atoms.positions, atoms.cell.array, atoms.pbc, loaded.metadata.cutoff)
    vectors = vectors.double().requires_grad_(True)
    group = torch.tensor(atoms.arrays["mol-id"] - 1)
    totals = []
    for k, (name, q, _) in enumerate(MOLECULES):
        electrons = int(atoms.numbers[group.numpy() == k].sum()) - q
        totals.append([float(q), 2.0 if electrons % 2 else 1.0])
    out = grouped_forward(loaded.module, species, edge_index, vectors, len(atoms), group,
                          torch.tensor(totals, dtype=torch.float64))
    energy = out["energies"].sum()
    (grad,) = torch.autograd.grad(energy, vectors)
    return float(energy.detach()), edge_forces(grad, edge_index, len(atoms)).numpy(), out["charges"].detach().numpy()


def _script(path, charge="molecule", style="full"):
    return "\n".join([
        "units metal", f"atom_style {style}", "atom_modify map array", "processors * 1 1",
        "read_data ../data.lmp", "special_bonds lj/coul 1.0 1.0 1.0", "comm_modify mode single",
        f"pair_style multiscale {path} charge {charge}", "pair_coeff * * H C N O", *DUMP,
        "dump q all custom 1 charges.txt x y z q mol", "dump_modify q sort id format float %.17g",
        "run 0", *THERMO]) + "\n"


def _charges(workdir):
    lines = (workdir / "charges.txt").read_text().splitlines()
    n = int(lines[3])
    rows = np.array([[float(v) for v in line.split()] for line in lines[9:9 + n]])
    return rows[np.lexsort(np.round(rows[:, :3], 4).T[::-1])]


def _write(tmp_path, atoms):
    import ase.io
    ase.io.write(tmp_path / "data.lmp", atoms, format="lammps-data", specorder=ELEMENTS, masses=True,
                 atom_style="full")


def test_molecules_span_the_rank_boundaries():
    atoms = box()
    x = atoms.positions[:, 0] / LENGTH
    for mol, boundary in ((1, 0.5), (2, 1 / 3), (4, 0.75)):
        mine = x[atoms.arrays["mol-id"] == mol]
        assert mine.min() < boundary < mine.max()


@pytest.mark.mpi
def test_each_molecule_keeps_its_charge_on_one_to_four_ranks(tmp_path, model_file):
    atoms = box()
    _write(tmp_path, atoms)
    energy, forces, charges = reference(model_file, atoms)
    order = np.lexsort(np.round(atoms.positions, 4).T[::-1])
    first = None
    for ranks in (1, 2, 3, 4):
        got = run_ok(_script(model_file), tmp_path / f"r{ranks}", ranks)
        rows = _charges(tmp_path / f"r{ranks}")
        for k, (_, q, _) in enumerate(MOLECULES):
            assert abs(rows[rows[:, 4] == k + 1, 3].sum() - q) <= 1e-10, (ranks, k)
        assert relative(rows[:, 3], charges[order]) <= 1e-10, ranks
        assert abs(got["pe"] - energy) <= 1e-10 * abs(energy), ranks
        assert relative(got["forces"], forces[order]) <= 1e-10, ranks
        first = first or got
        assert relative(got["stresses"], first["stresses"]) <= 1e-10, ranks
        assert relative(got["energies"], first["energies"]) <= 1e-10, ranks
    # and it is not the whole-system normalisation: that moves charge between molecules
    whole = reference_whole(model_file, atoms)
    per_mol = [whole[atoms.arrays["mol-id"] == k + 1].sum() for k in range(len(MOLECULES))]
    assert max(abs(p - q) for p, (_, q, _) in zip(per_mol, MOLECULES)) > 1e-3


def reference_whole(path, atoms):
    calc = multiscale.MultiscaleCalculator(path, charge=float(sum(q for _, q, _ in MOLECULES)), spin=1)
    whole = atoms.copy()
    whole.calc = calc
    return whole.get_charges()


@pytest.mark.mpi
def test_molecule_charges_are_refused_without_molecules_or_a_grouped_model(tmp_path, model_file, model_dir):
    import ase.io
    atoms = box()
    _write(tmp_path, atoms)
    ase.io.write(tmp_path / "charge.lmp", atoms, format="lammps-data", specorder=ELEMENTS, masses=True,
                 atom_style="charge")
    plain = multiscale.export(TwoPassCharges(ELEMENTS), model_dir / "two_pass_chno.pt")
    proc = run(_script(plain), tmp_path / "plain")
    assert proc.returncode != 0 and "takes one total charge for the whole system" in proc.stdout + proc.stderr
    script = _script(model_file, style="charge").replace("../data.lmp", "../charge.lmp")
    script = script.replace(" mol\n", "\n").replace("special_bonds lj/coul 1.0 1.0 1.0\n", "")
    proc = run(script, tmp_path / "nomol")
    assert proc.returncode != 0 and "needs molecule IDs and charges" in proc.stdout + proc.stderr


def test_grouped_sums_equal_separate_molecules_when_they_are_far_apart(model_file):
    """Two molecules beyond each other's receptive field: the grouped evaluation is the sum of
    the two molecules evaluated alone with their own charge and multiplicity."""
    loaded = multiscale.load(model_file)
    a, b = molecule("CH3OH"), molecule("NH3")
    b.positions += [30.0, 0.0, 0.0]
    both = a + b
    species = torch.tensor([ELEMENTS.index(s) for s in both.get_chemical_symbols()])
    edge_index, vectors = neighbors.edges(both.positions, np.zeros((3, 3)), [False] * 3, 4.0)
    group = torch.tensor([0] * len(a) + [1] * len(b))
    out = grouped_forward(loaded.module, species, edge_index, vectors.double(), len(both), group,
                          torch.tensor([[1.0, 2.0], [-1.0, 2.0]], dtype=torch.float64))
    alone = []
    for m, q in ((a, 1.0), (b, -1.0)):
        m = m.copy()
        m.calc = multiscale.MultiscaleCalculator(model_file, charge=q, spin=2)
        alone.append((m.get_potential_energy(), m.get_charges()))
    assert abs(float(out["energies"].sum().detach()) - alone[0][0] - alone[1][0]) <= 1e-10
    assert np.allclose(out["charges"].detach().numpy(), np.concatenate([alone[0][1], alone[1][1]]), atol=1e-12)
