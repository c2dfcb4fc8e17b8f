"""Charge-state data (GFN2-xTB through tblite) and multitask training: the dataset builder's
labels, batches normalised per structure, the charge and dipole terms of the loss, the
applied-field forces, and the single-task configuration of the ablation."""

import numpy as np
import pytest
import torch
from ase.build import molecule

from multiscale.learning.data import StructureDataset, read_structures, write_structures
from multiscale.learning.trainer import TrainConfig, Trainer, batch_loss, predict
from multiscale.potentials.aimnet2 import AIMNet2Potential
from multiscale.reference.charge_states import geometries, label_xtb, multiplicities, states, xtb

ELEMENTS = ["C", "H", "N", "O"]


def _small(seed=0):
    return AIMNet2Potential(ELEMENTS, rc_s=3.0, nshifts=6, nfeature=4, ncomb_v=4, hidden=((16,), (16,), (16,)),
                            aim_size=16, out_hidden=(8,), coulomb="dsf", dsf_rc=4.0, cutoff=4.0,
                            charge_terms=True, seed=seed).double()


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    structures = label_xtb(geometries(["H2O", "NH3", "CH3OH"], conformers=3, seed=0, field_fraction=0.5),
                           progress=lambda msg: None)
    return write_structures(tmp_path_factory.mktemp("chno") / "data.h5", structures)


def test_states_follow_the_electron_count():
    assert multiplicities(10, 0) == [1, 3] and multiplicities(9, 1) == [2] and multiplicities(10, 2) == [1]
    water = molecule("H2O")
    assert states(water) == [(-2, 1), (-1, 2), (0, 1), (0, 3), (1, 2), (2, 1)]
    assert all(q < 2 for q, _ in states(molecule("H2")))        # H2 has two electrons only


def test_labels_are_xtb_in_each_state_and_field(labelled):
    structures = read_structures(labelled)
    assert len(structures) == 3 * 6 * 3                          # 3 molecules x 6 states x 3 conformers
    in_field = [a for a in structures if "electric_field" in a.info]
    assert in_field and len(in_field) < len(structures)
    for atoms in structures[::7] + in_field[:2]:
        q, m = int(atoms.info.get("charge", 0)), int(atoms.info.get("spin", 1))
        assert abs(atoms.get_charges().sum() - q) <= 1e-8
        assert np.abs(atoms.get_center_of_mass()).max() < 0.2       # centred (displaced after)
        again = xtb(atoms, q, m, field=atoms.info.get("electric_field"))
        assert abs(again["energy"] - atoms.get_potential_energy()) <= 1e-8
        assert np.allclose(again["dipole"], atoms.calc.results["dipole"], atol=1e-10)
    # tblite's field convention, as the model's: a uniform field pushes an ion by Q E
    ion = [a for a in in_field if a.info.get("charge", 0) != 0][0]
    assert np.allclose(ion.get_forces().sum(0), ion.info["charge"] * ion.info["electric_field"], atol=1e-6)


def test_batches_are_normalised_per_structure_and_equal_single_structures(labelled):
    structures = read_structures(labelled)
    dataset = StructureDataset(structures, ELEMENTS, 4.0)
    model = _small()
    idx = list(range(0, len(structures), 5))
    batch = dataset.batch(idx)
    pred = predict(model, batch, create_graph=False)
    pred = type(pred)(*(t.detach() if t is not None else None for t in pred))
    for s, k in enumerate(idx):
        mine = batch.structure == s
        assert abs(float(pred.charges[mine].sum()) - structures[k].info.get("charge", 0)) <= 1e-10
        alone = type(pred)(*(t.detach() if t is not None else None
                             for t in predict(model, dataset.batch([k]), create_graph=False)))
        assert abs(float(alone.energy[0] - pred.energy[s])) <= 1e-10 * abs(float(alone.energy[0]))
        assert torch.allclose(alone.forces, pred.forces[mine], atol=1e-10)


def test_field_forces_are_minus_the_gradient_of_the_energy_in_the_field(labelled):
    structures = [a for a in read_structures(labelled) if "electric_field" in a.info]
    atoms = structures[0]
    model = _small(1)

    def energy(positions):
        moved = atoms.copy()
        moved.positions = positions
        moved.calc = atoms.calc
        from ase.calculators.singlepoint import SinglePointCalculator
        moved.calc = SinglePointCalculator(moved, energy=0.0, forces=np.zeros((len(moved), 3)))
        p = predict(model, StructureDataset([moved], ELEMENTS, 4.0).batch([0]), create_graph=False)
        return float(p.energy[0].detach()), p.forces.detach().numpy()

    _, forces = energy(atoms.positions)
    h = 1e-5
    for a, c in [(0, 0), (1, 2), (2, 1)]:
        plus, minus = atoms.positions.copy(), atoms.positions.copy()
        plus[a, c] += h
        minus[a, c] -= h
        assert abs(-(energy(plus)[0] - energy(minus)[0]) / (2 * h) - forces[a, c]) <= 1e-6


def test_charge_and_dipole_terms_of_the_loss(labelled):
    dataset = StructureDataset(read_structures(labelled), ELEMENTS, 4.0)
    model = _small()
    batch = dataset.batch(list(range(8)))
    base, errors = batch_loss(model, batch, 0.1, create_graph=False)
    with_q, _ = batch_loss(model, batch, 0.1, create_graph=False, charge_weight=2.0)
    with_mu, _ = batch_loss(model, batch, 0.1, create_graph=False, dipole_weight=3.0)
    assert len(errors.charges) == int(batch.species.shape[0]) and len(errors.dipole) == 8
    base, with_q, with_mu = float(base.detach()), float(with_q.detach()), float(with_mu.detach())
    assert abs(with_q - base - 2.0 * float((errors.charges ** 2).mean())) <= 1e-12
    assert abs(with_mu - base - 3.0 * float((errors.dipole ** 2).mean())) <= 1e-12


def test_multitask_training_learns_the_charges(labelled):
    """A few epochs with the charge term bring the charges closer to xTB's than without it."""
    structures = read_structures(labelled)
    results = {}
    for weight in (0.0, 5.0):
        model = _small(3)
        dataset = StructureDataset(structures, ELEMENTS, 4.0)
        config = TrainConfig(epochs=6, batch_size=8, learning_rate=3e-3, force_weight=0.1,
                             charge_weight=weight, validation_fraction=0.2, seed=1)
        results[weight] = Trainer(model, dataset, config, log=lambda msg: None).run()["charge_rmse_e"]
    assert results[5.0] < 0.7 * results[0.0]


def test_the_ablation_switches_off_only_the_charge_and_dipole_terms():
    from multiscale.learning.aimnet_chno import CONFIG, single_task_config, split_molecules
    shipped, single = CONFIG.read_text().splitlines(), single_task_config().splitlines()
    changed = [(a, b) for a, b in zip(shipped, single) if a != b]
    assert [b.split("=")[0].strip() for _, b in changed] == ["charge_weight", "dipole_weight", "model", "folder"]
    train, held = split_molecules()
    assert held and not set(train) & set(held)
