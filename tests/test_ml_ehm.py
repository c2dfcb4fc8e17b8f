"""ML-EHM (multiscale.potentials.ml_ehm): textbook EHT when its heads are zero, forces minus
the finite-difference gradient at planar, 90-degree and random geometries, Mulliken charges
that sum to Q, training gradients finite at the HOMO/LUMO crossing, the same numbers in ASE,
OpenMM (Reference) and LAMMPS on one rank, and the refusals for periodic boxes and several
ranks."""

import numpy as np
import pytest
import torch
from ase.build import molecule

import multiscale
from lmp_runs import DUMP, THERMO, relative, run, run_ok
from multiscale.learning import ml_ehm
from multiscale.potentials.ml_ehm import MLEHM
from multiscale.quantum.huckel import extended_huckel
from multiscale.reference.molecules import twisted_ethylene


def perturbed(seed: int = 1) -> MLEHM:
    """An ML-EHM whose output heads are random (not textbook EHT), as after training."""
    model = MLEHM(cutoff=6.0, features=16, n_basis=12)
    torch.manual_seed(seed)
    with torch.no_grad():
        for head in (model.onsite, model.pair, model.sp):
            head[2].weight.normal_(0.0, 0.05)
            head[2].bias.normal_(0.0, 0.05)
    return model


@pytest.fixture(scope="module")
def model_file(model_dir):
    model = perturbed()
    return multiscale.export(model, model_dir / "ml_ehm.pt", model.metadata())


def geometries():
    random = twisted_ethylene(37.0)
    random.rattle(0.05, seed=3)
    return {"planar": twisted_ethylene(0.0), "twisted 90": twisted_ethylene(90.0), "random": random}


def test_zero_heads_are_textbook_extended_huckel():
    model = MLEHM(cutoff=12.0)              # the 2 Å switch lies beyond every pair of ethylene
    for atoms in geometries().values():
        symbols = atoms.get_chemical_symbols()
        p = ml_ehm.predict(model, {"symbols": symbols, "positions": atoms.positions})
        ref = extended_huckel(symbols, atoms.positions)
        levels = ml_ehm.frontier(ref.orbital_energies.numpy(), symbols)
        assert abs(float(p["energy"]) - float(ref.energy)) < 1e-9
        assert np.abs(p["frontier"].detach().numpy() - levels).max() < 1e-9
        assert np.abs(p["charges"].detach().numpy() - ref.charges.numpy()).max() < 1e-9


@pytest.mark.parametrize("name", ["planar", "twisted 90", "random"])
def test_forces_are_minus_the_finite_difference_gradient(name, model_file):
    atoms = geometries()[name]
    atoms.calc = multiscale.MultiscaleCalculator(model_file)
    forces = atoms.get_forces()
    h, fd = 1e-5, np.zeros_like(forces)
    for a in range(len(atoms)):
        for k in range(3):
            energies = []
            for step in (h, -h):
                moved = atoms.copy()
                moved.positions[a, k] += step
                moved.calc = multiscale.MultiscaleCalculator(model_file)
                energies.append(moved.get_potential_energy())
            fd[a, k] = -(energies[0] - energies[1]) / (2 * h)
    assert np.linalg.norm(forces - fd) <= 1e-6 * np.linalg.norm(fd)


def test_training_path_equals_the_scripted_model_and_its_gradients_are_finite_at_the_crossing():
    model = perturbed()
    scripted = torch.jit.script(model)
    atoms = twisted_ethylene(90.0)                       # HOMO and LUMO degenerate
    item = {"symbols": atoms.get_chemical_symbols(), "positions": atoms.positions}
    python = ml_ehm.predict(model, item, create_graph=True)
    script = ml_ehm.predict(scripted, item)
    assert abs(float(python["energy"].detach()) - float(script["energy"])) < 1e-10
    assert np.abs(python["forces"].detach().numpy() - script["forces"].numpy()).max() < 1e-9
    loss = (python["forces"] ** 2).sum() + python["energy"] ** 2
    loss.backward()
    grads = torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])
    assert torch.isfinite(grads).all() and grads.abs().max() > 0


@pytest.mark.parametrize("charge,spin", [(0, 1), (1, 2), (-1, 2), (0, 3)])
def test_mulliken_charges_sum_to_the_total_charge(model_file, charge, spin):
    atoms = molecule("CH3CHO")
    atoms.calc = multiscale.MultiscaleCalculator(model_file, charge=charge, spin=spin)
    atoms.get_potential_energy()
    assert abs(atoms.get_charges().sum() - charge) < 1e-10
    levels = atoms.calc.results["orbital_energies"]
    assert levels.shape == (len(atoms) + 3 * 3,) and np.all(np.diff(levels) >= 0)


def test_periodic_structures_are_refused(model_file):
    atoms = molecule("C2H4", vacuum=5.0)
    atoms.pbc = True
    atoms.calc = multiscale.MultiscaleCalculator(model_file)
    with pytest.raises(ValueError, match="eigenproblem for the whole system.*pbc = False"):
        atoms.get_potential_energy()


def test_openmm_reference_equals_ase(model_file):
    from openmm_systems import single_point, system_of, topology_of
    from multiscale.engines.openmm import create_force
    atoms = geometries()["random"]
    atoms.calc = multiscale.MultiscaleCalculator(model_file)
    top = topology_of(atoms)
    e, f = single_point(system_of(top, create_force(model_file, top)), atoms.positions, "Reference")
    assert abs(e - atoms.get_potential_energy()) < 1e-9 * abs(e)
    assert relative(f, atoms.get_forces()) < 1e-9


def test_openmm_refuses_a_periodic_topology(model_file):
    from openmm_systems import topology_of
    from multiscale.engines.openmm import create_force
    import openmm
    top = topology_of(molecule("C2H4"))
    top.setPeriodicBoxVectors(np.eye(3) * 2.0 * openmm.unit.nanometer)
    with pytest.raises(ValueError, match="whole molecule and has no periodic images"):
        create_force(model_file, top)


def lammps_script(model_file, boundary: str) -> str:
    return "\n".join(["units metal", "atom_style atomic", "atom_modify map array", f"boundary {boundary}",
                      "read_data ../data.lmp", f"pair_style multiscale {model_file}",
                      "pair_coeff * * H C", *DUMP, "run 0", *THERMO]) + "\n"


@pytest.mark.mpi
def test_lammps_one_rank_equals_ase_and_two_ranks_or_a_periodic_box_refuse(tmp_path, model_file):
    import ase.io
    atoms = geometries()["random"]
    atoms.positions += 5.0
    atoms.cell, atoms.pbc = [14.0, 14.0, 14.0], False
    ase.io.write(tmp_path / "data.lmp", atoms, format="lammps-data", specorder=["H", "C"], masses=True)
    atoms.calc = multiscale.MultiscaleCalculator(model_file)
    order = np.lexsort(np.round(atoms.positions, 4).T[::-1])
    got = run_ok(lammps_script(model_file, "f f f"), tmp_path / "r1", 1)
    assert abs(got["pe"] - atoms.get_potential_energy()) <= 1e-10 * abs(got["pe"])
    assert relative(got["forces"], atoms.get_forces()[order]) <= 1e-10
    two = run(lammps_script(model_file, "f f f"), tmp_path / "r2", 2)
    assert two.returncode != 0 and "cannot be split over MPI ranks: run it on 1 rank, not 2" in two.stdout + two.stderr
    periodic = run(lammps_script(model_file, "p p p"), tmp_path / "p1", 1)
    assert periodic.returncode != 0 and "use a non-periodic box" in periodic.stdout + periodic.stderr
