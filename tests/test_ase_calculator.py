"""The ASE calculator: finite differences, invariances, cell types."""

import numpy as np
import torch
import pytest
from ase import Atoms
from ase.build import bulk, molecule

import multiscale
from multiscale.potentials import MessagePassingPotential, StillingerWeber


@pytest.fixture(scope="module", params=["sw", "message-passing"])
def model(request, si_sw_file, model_dir):
    if request.param == "sw":
        m = StillingerWeber(si_sw_file, ["Si"])
    else:
        m = MessagePassingPotential(["Si", "C", "H"], cutoff=3.8, hops=2, seed=1)
    return multiscale.load(multiscale.export(m, model_dir / f"{request.param}.pt"))


def periodic_triclinic():
    atoms = bulk("Si", "diamond", a=5.43) * (2, 2, 2)
    atoms.set_cell(atoms.cell @ np.array([[1.02, 0.05, 0.0], [0.0, 0.97, 0.04], [0.03, 0.0, 1.01]]),
                   scale_atoms=True)
    atoms.rattle(0.1, seed=2)
    return atoms


def cluster():
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.rattle(0.1, seed=3)
    atoms.pbc = False
    atoms.cell = np.zeros((3, 3))
    return atoms


def slab():  # periodic in x, y only
    atoms = bulk("Si", "diamond", a=5.43, cubic=True) * (2, 2, 1)
    atoms.rattle(0.1, seed=4)
    atoms.pbc = [True, True, False]
    atoms.center(vacuum=5.0, axis=2)
    return atoms


STRUCTURES = {"triclinic": periodic_triclinic, "cluster": cluster, "slab": slab}


def with_calc(atoms, model):
    atoms.calc = multiscale.MultiscaleCalculator(model)
    return atoms


def energy_at(atoms, model, positions=None, cell=None):
    a = atoms.copy()
    if cell is not None:
        a.set_cell(cell, scale_atoms=True)
    if positions is not None:
        a.positions = positions
    return with_calc(a, model).get_potential_energy()


@pytest.mark.parametrize("name", list(STRUCTURES))
def test_forces_are_minus_finite_difference_gradient(model, name):
    atoms = with_calc(STRUCTURES[name](), model)
    forces = atoms.get_forces()
    h = 1e-5
    fd = np.zeros_like(forces)
    for a in range(0, len(atoms), max(1, len(atoms) // 6)):
        for k in range(3):
            p = atoms.positions.copy()
            p[a, k] += h
            ep = energy_at(atoms, model, positions=p)
            p[a, k] -= 2 * h
            em = energy_at(atoms, model, positions=p)
            fd[a, k] = -(ep - em) / (2 * h)
            assert abs(fd[a, k] - forces[a, k]) <= 1e-6 * np.abs(forces).max()
    assert np.abs(forces).max() > 1e-2


def test_stress_is_strain_derivative(model):
    atoms = with_calc(periodic_triclinic(), model)
    stress = atoms.get_stress(voigt=False)
    volume = atoms.get_volume()
    h = 1e-6
    for a, b in [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)]:
        eps = np.zeros((3, 3))
        eps[a, b] = eps[b, a] = h / (1 if a == b else 2)
        ep = energy_at(atoms, model, cell=atoms.cell @ (np.eye(3) + eps))
        em = energy_at(atoms, model, cell=atoms.cell @ (np.eye(3) - eps))
        fd = (ep - em) / (2 * h) / volume
        assert abs(fd - stress[a, b]) <= 1e-6 * np.abs(stress).max()
    # per-atom stresses sum to the stress
    assert np.allclose(atoms.get_stresses().sum(0), atoms.get_stress(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", list(STRUCTURES))
def test_forces_sum_to_zero(model, name):
    forces = with_calc(STRUCTURES[name](), model).get_forces()
    assert np.abs(forces.sum(0)).max() <= 1e-10 * max(1.0, np.abs(forces).max())


def test_invariances(model):
    atoms = with_calc(periodic_triclinic(), model)
    e0, f0, s0 = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(voigt=False)
    rng = np.random.default_rng(5)
    # translation
    moved = atoms.copy()
    moved.positions += rng.uniform(-3, 3, size=3)
    assert with_calc(moved, model).get_potential_energy() == pytest.approx(e0, rel=1e-12, abs=1e-10)
    # rotation of positions and cell together
    q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    rotated = atoms.copy()
    rotated.set_cell(atoms.cell @ q.T, scale_atoms=False)
    rotated.positions = atoms.positions @ q.T
    with_calc(rotated, model)
    assert rotated.get_potential_energy() == pytest.approx(e0, rel=1e-12, abs=1e-10)
    assert np.allclose(rotated.get_forces(), f0 @ q.T, atol=1e-9)
    assert np.allclose(rotated.get_stress(voigt=False), q @ s0 @ q.T, atol=1e-10)
    # permutation
    perm = rng.permutation(len(atoms))
    permuted = with_calc(atoms[perm], model)
    assert permuted.get_potential_energy() == pytest.approx(e0, rel=1e-12, abs=1e-10)
    assert np.allclose(permuted.get_forces(), f0[perm], atol=1e-10)


def test_unknown_element_is_named(model):
    atoms = molecule("H2O")
    atoms.calc = multiscale.MultiscaleCalculator(model)
    with pytest.raises(ValueError, match="not \\['O'\\]|not \\['H', 'O'\\]"):
        atoms.get_potential_energy()


def test_isolated_atom_and_empty_neighbourhood(model):
    atoms = Atoms("Si2", positions=[[0, 0, 0], [20, 0, 0]])
    atoms.calc = multiscale.MultiscaleCalculator(model)
    assert np.allclose(atoms.get_forces(), 0.0)
    e = atoms.get_potential_energy()
    assert np.isfinite(e)


def test_energy_is_continuous_at_the_cutoff(model):
    """An atom leaving the cutoff sphere changes the energy by (almost) nothing."""
    rc = model.metadata.cutoff
    energies = []
    for r in (rc - 1e-7, rc + 1e-7):
        atoms = Atoms("Si3", positions=[[0, 0, 0], [2.35, 0, 0], [-r, 0.0, 0.0]])
        atoms.calc = multiscale.MultiscaleCalculator(model)
        energies.append(atoms.get_potential_energy())
    assert abs(energies[0] - energies[1]) < 1e-9


class _ChargeEnergy(torch.nn.Module):
    """E = charge + 10 (spin - 1) on atom 0, plus a harmonic pair term: a model whose energy
    tells which charge and spin the engine passed."""

    def __init__(self):
        super().__init__()

    def forward(self, species, edge_index, edge_vectors, n_local: int, charge: float, spin: int):
        e = torch.zeros(species.shape[0], dtype=edge_vectors.dtype)
        e = e.index_add(0, edge_index[0], 0.5 * (edge_vectors * edge_vectors).sum(1))
        e[0] = e[0] + charge + 10.0 * (spin - 1)
        return {"energies": e}

    def metadata(self):
        return multiscale.ModelMetadata(name="charge-probe", elements=["Si"], cutoff=3.0,
                                        uses_charge=True, uses_spin=True)


def test_charge_and_spin_are_parameters_that_reset_results(model_dir):
    path = multiscale.export(_ChargeEnergy(), model_dir / "charge_probe.pt")
    atoms = cluster()
    atoms.calc = multiscale.MultiscaleCalculator(path)
    e0 = atoms.get_potential_energy()
    assert atoms.calc.parameters.charge == 0.0 and atoms.calc.parameters.spin == 1
    atoms.calc.set(charge=2.0)
    assert atoms.calc.results == {}                      # ASE's rule: a changed parameter clears results
    assert atoms.get_potential_energy() == pytest.approx(e0 + 2.0, rel=1e-12)
    atoms.calc.set(spin=3)
    assert atoms.get_potential_energy() == pytest.approx(e0 + 22.0, rel=1e-12)
    atoms.info["charge"] = -1.0                          # per-structure override
    atoms.calc.reset()
    with pytest.raises(ValueError, match="spin multiplicity 3 are impossible"):
        atoms.get_potential_energy()                     # one more electron: an odd count
    atoms.info["spin"] = 2
    assert atoms.get_potential_energy() == pytest.approx(e0 - 1.0 + 10.0, rel=1e-12)


def test_shipped_names_and_wrong_kind():
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.calc = multiscale.MultiscaleCalculator("si-ani")
    assert np.isfinite(atoms.get_potential_energy())
    with pytest.raises(multiscale.ModelContractError, match="is a crack-field predictor, not an interatomic"):
        multiscale.MultiscaleCalculator("crack-fields")


def test_a_charge_in_atoms_info_is_not_served_from_the_cache(model_dir):
    """ASE compares positions, numbers and cell before reusing results, not atoms.info: the
    calculator must notice a new charge, spin or field there."""
    from ase.build import molecule
    from charged_models import TwoPassCharges
    path = multiscale.export(TwoPassCharges(["H", "C", "O"]), model_dir / "two_pass_cache.pt")
    atoms = molecule("CH3OH")
    atoms.calc = multiscale.MultiscaleCalculator(path)
    energies = {}
    for q, m in ((0, 1), (1, 2), (0, 1), (-1, 2)):
        atoms.info.update(charge=q, spin=m)
        energies.setdefault((q, m), []).append(atoms.get_potential_energy())
        assert abs(atoms.get_charges().sum() - q) <= 1e-10
    assert energies[(0, 1)][0] == energies[(0, 1)][1]
    assert len({round(v[0], 8) for v in energies.values()}) == 3
