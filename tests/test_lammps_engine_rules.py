"""Rules the LAMMPS plugin applies around every model: only local atoms' energies count (a
model may return its ghosts' energies) unless the model declares ``ghost_energies = "tally"``
(SW's three-body thirds: tests/test_lammps_parity.py); ``dtype float32`` casts only
floating-point tensors (ANI's integer index tables stay integers)."""

from typing import Dict

import numpy as np
import pytest
import torch
from torch import Tensor

import multiscale
from lmp_runs import DUMP, THERMO, relative, run_ok
from multiscale.model.registry import model_path
from multiscale.potentials import MessagePassingPotential
from multiscale.potentials.ani import build_ani

pytestmark = pytest.mark.mpi


class GhostEnergies(torch.nn.Module):
    """A model that returns an energy for every node, ghosts included: the ghosts' entries are
    the inner model's energies with every node taken as local (nonzero, and counted twice by an
    engine that sums all of them)."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor, n_local: int,
                charge: float, spin: int) -> Dict[str, Tensor]:
        own = self.inner(species, edge_index, edge_vectors, n_local, charge, spin)["energies"]
        every = self.inner(species, edge_index, edge_vectors, species.shape[0], charge, spin)["energies"]
        return {"energies": torch.cat([own[:n_local], every[n_local:]])}

    def metadata(self):
        return self.inner.metadata()


def crystal(pair_lines, elements="Si", cells=3, tilt="0.4 -0.3 0.2", extra=()):
    box = f"prism 0 {cells} 0 {cells} 0 {cells} {tilt}" if tilt else f"block 0 {cells} 0 {cells} 0 {cells}"
    return "\n".join([
        "units metal", "atom_style atomic", "atom_modify map array", "lattice diamond 5.431",
        f"region box {box}", "create_box 1 box",
        "create_atoms 1 box", "mass * 28.0", "displace_atoms all random 0.1 0.1 0.1 99 units box",
        *pair_lines, *DUMP, *extra, "run 0", *THERMO]) + "\n"


@pytest.fixture(scope="module")
def mp(model_dir):
    inner = MessagePassingPotential(["Si"], cutoff=3.6, hops=2, features=16, seed=3)
    return (multiscale.export(inner, model_dir / "rules_mp.pt"),
            multiscale.export(GhostEnergies(inner), model_dir / "rules_mp_ghosts.pt"))


@pytest.mark.parametrize("ranks", [1, 2])
def test_ghost_energies_are_not_counted(tmp_path, mp, ranks):
    plain, ghosts = mp
    a = run_ok(crystal([f"pair_style multiscale {plain}", "pair_coeff * * Si"]), tmp_path / "a", ranks)
    b = run_ok(crystal([f"pair_style multiscale {ghosts}", "pair_coeff * * Si"]), tmp_path / "b", ranks)
    assert b["pe"] == pytest.approx(a["pe"], rel=1e-12)
    assert relative(b["forces"], a["forces"]) <= 1e-12
    assert relative(b["energies"], a["energies"]) <= 1e-12
    assert relative(b["stresses"], a["stresses"]) <= 1e-10
    assert np.abs(a["forces"]).max() > 1e-3


@pytest.mark.parametrize("ranks", [1, 2])
def test_ghost_energies_model_matches_ase(tmp_path, mp, ranks):
    """LAMMPS with the ghost-returning model = ASE (which has no ghosts) with either model."""
    plain, ghosts = mp
    res = run_ok(crystal([f"pair_style multiscale {ghosts}", "pair_coeff * * Si"], tilt=None,
                         extra=["write_data data.lmp"]), tmp_path, ranks)
    from ase.io import read
    atoms = read(tmp_path / "data.lmp", format="lammps-data", atom_style="atomic")
    atoms.symbols = ["Si"] * len(atoms)
    atoms.wrap()  # ASE unwraps by image flags; the dump holds wrapped positions
    atoms = atoms[np.lexsort(np.round(atoms.positions, 4).T[::-1])]  # the order lmp_runs.read uses
    for model in (plain, ghosts):
        atoms.calc = multiscale.MultiscaleCalculator(model)
        assert res["pe"] == pytest.approx(atoms.get_potential_energy(), rel=1e-10)
        assert relative(res["forces"], atoms.get_forces()) <= 1e-9
        assert relative(res["energies"], atoms.get_potential_energies()) <= 1e-9


@pytest.fixture(scope="module")
def ani_model(model_dir):
    model = build_ani(["Si"], aev="ani1x", hidden=(16, 8), seed=2).double()
    return multiscale.export(model, model_dir / "rules_ani.pt")


@pytest.mark.parametrize("name", ["si-ani", "ani", "message-passing"])
@pytest.mark.parametrize("ranks", [1, 2])
def test_float32_matches_float64(tmp_path, name, ranks, ani_model, mp):
    path = {"si-ani": model_path("si-ani"), "ani": ani_model, "message-passing": mp[0]}[name]
    f64 = run_ok(crystal([f"pair_style multiscale {path}", "pair_coeff * * Si"]), tmp_path / "f64", ranks)
    f32 = run_ok(crystal([f"pair_style multiscale {path} dtype float32", "pair_coeff * * Si"]),
                 tmp_path / "f32", ranks)
    assert f32["pe"] == pytest.approx(f64["pe"], rel=1e-5)
    assert relative(f32["forces"], f64["forces"]) <= 1e-5


def test_shipped_model_by_name(tmp_path):
    """`pair_style multiscale si-ani` finds the shipped file beside the plugin, as the registry does."""
    by_name = run_ok(crystal(["pair_style multiscale si-ani", "pair_coeff * * Si"]), tmp_path / "name")
    by_path = run_ok(crystal([f"pair_style multiscale {model_path('si-ani')}", "pair_coeff * * Si"]),
                     tmp_path / "path")
    assert by_name["pe"] == by_path["pe"] and np.isfinite(by_name["pe"])
