"""The equivariant transformer in every engine: LAMMPS on 1-4 ranks (a triclinic box, per-atom
stress), ASE and OpenMM give the same numbers; the attention output reaches Python."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import multiscale
from lmp_runs import DUMP, THERMO, relative, run_ok
from multiscale.engines.openmm import create_force
from multiscale.potentials import EquivariantTransformer
from native_lammps import single_point as lammps_single_point
from openmm_systems import single_point, system_of, topology_of
from test_lammps_neural import cell
from test_openmm import ase_single_point, sic_cell

pytestmark = pytest.mark.mpi


@pytest.fixture(scope="module")
def et_model(model_dir):
    """Two attention layers (hops 3: the neighbour embedding adds one), random non-zero weights."""
    model = EquivariantTransformer(["Si", "C"], cutoff=3.6, layers=2, features=16, heads=4, n_rbf=8, seed=2)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return multiscale.export(model, model_dir / "et.pt")


def test_lammps_ase_and_openmm_agree(et_model):
    ref = lammps_single_point(sic_cell(), [f"pair_style multiscale {et_model}", "pair_coeff * * Si C"],
                              plugin=True, specorder=["Si", "C"])
    atoms = ref["atoms"]
    assert np.abs(ref["forces"]).max() > 1e-2
    e_ase, f_ase = ase_single_point(atoms, et_model)
    assert abs(e_ase - ref["energy"]) <= 1e-10 * abs(ref["energy"])
    assert relative(f_ase, ref["forces"]) <= 1e-10
    top = topology_of(atoms)
    for platform in ("Reference", "CPU"):
        e, f = single_point(system_of(top, create_force(et_model, top)), atoms.positions, platform)
        assert abs(e - e_ase) <= 1e-6 * abs(e_ase), platform  # OpenMM's kJ/mol and nm round trip
        assert relative(f, f_ase) <= 1e-6, platform


def test_one_to_four_ranks_agree_on_a_triclinic_box(tmp_path, et_model):
    lines = cell([f"pair_style multiscale {et_model}", "pair_coeff * * Si C"], size=4)
    text = "\n".join(lines + DUMP + ["run 0"] + THERMO) + "\n"
    one = run_ok(text, tmp_path / "r1", ranks=1)
    assert np.abs(one["forces"]).max() > 1e-2
    for ranks in (2, 3, 4):
        other = run_ok(text, tmp_path / f"r{ranks}", ranks=ranks)
        assert abs(other["pe"] - one["pe"]) <= 1e-10 * abs(one["pe"]), ranks
        for key in ("forces", "energies", "stresses", "pressure"):
            assert relative(other[key], one[key]) <= 1e-10, (key, ranks)


def test_ase_calculator_exposes_the_attention(et_model):
    atoms = sic_cell()
    atoms.calc = multiscale.MultiscaleCalculator(et_model)
    attention = atoms.calc.get_property("attention", atoms)
    index = atoms.calc.results["edge_index"]
    assert attention.shape == (index.shape[1], 2, 4)
    assert np.isfinite(attention).all() and np.abs(attention).max() > 1e-3


def test_bond_attention_and_its_plot(et_model, tmp_path):
    """One weight per bond (both directions of an edge merged), and the CLI draws the map."""
    from ase.io import write
    from multiscale.atomistic.attention_map import bond_attention
    from multiscale.cli import main

    atoms = sic_cell()
    pairs, weights, vectors = bond_attention(atoms, et_model)
    calc = multiscale.MultiscaleCalculator(et_model)
    atoms.calc = calc
    attention = np.abs(calc.get_property("attention", atoms)).mean(axis=(1, 2))
    i, j = calc.results["edge_index"]
    assert len(pairs) == len(i) // 2 and np.all(pairs[:, 0] < pairs[:, 1])
    k = np.argmax(weights)
    both = attention[((i == pairs[k, 0]) & (j == pairs[k, 1])) | ((i == pairs[k, 1]) & (j == pairs[k, 0]))]
    lengths = np.linalg.norm(vectors, axis=1)
    assert lengths.max() < 3.6
    # the cell (10.9 Å) is over twice the cutoff: one image per pair, a bond is its two directions
    assert len(both) == 2
    assert weights[k] == pytest.approx(both.mean(), rel=1e-12)
    write(tmp_path / "cell.extxyz", atoms)
    assert main(["attention", str(et_model), str(tmp_path / "cell.extxyz"), "-o", str(tmp_path / "map.png"),
                 "--layer", "-1"]) == 0
    assert (tmp_path / "map.png").stat().st_size > 10_000
    # only the pairs closer than max_distance, with the same weights
    near, near_weights, near_vectors = bond_attention(atoms, et_model, max_distance=2.5)
    short = lengths < 2.5
    assert 0 < len(near) < len(pairs) and np.array_equal(near, pairs[short])
    assert np.array_equal(near_weights, weights[short]) and np.linalg.norm(near_vectors, axis=1).max() < 2.5
    assert main(["attention", str(et_model), str(tmp_path / "cell.extxyz"), "-o", str(tmp_path / "near.png"),
                 "--max-distance", "2.5"]) == 0


def test_broken_bonds_across_a_periodic_boundary():
    """A bond stretched from 2.35 to 3.5 Å is found, also when it crosses a periodic face; the
    others, moved rigidly or barely, are not."""
    from ase.build import bulk
    from multiscale.atomistic.attention_map import broken_bonds
    before = bulk("Si", "diamond", a=5.431, cubic=True)
    before.pbc = [False, False, True]
    before.wrap()
    after = before.copy()
    after.positions += 0.3                                      # a rigid shift breaks nothing
    assert len(broken_bonds(before, after)) == 0
    i, j = 0, 1                                                 # neighbours, 2.35 Å apart
    assert before.get_distance(i, j) == pytest.approx(2.3517, abs=1e-3)
    u = before.get_distance(i, j, vector=True)
    after.positions[j] += 0.5 * u                               # stretched to 3.53 Å
    after.positions[j, 2] -= before.cell[2, 2]                  # and moved to the next image along z
    assert broken_bonds(before, after).tolist() == [[i, j]]
    with pytest.raises(ValueError, match="same atoms in the same order"):
        broken_bonds(before, after[:-1])


def test_attention_map_refuses_a_model_without_attention(tmp_path):
    from multiscale.atomistic.attention_map import bond_attention
    with pytest.raises(ValueError, match="no attention output"):
        bond_attention(sic_cell(), "si-ani")
