"""Transfer learning: rebuilding exported ANI files, frozen/adapted fine-tuning, the CLI, and
GFN1-xTB -> GFN2-xTB on small molecules beating training from scratch."""

import copy
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import multiscale
from multiscale.engines import neighbors
from multiscale.reference.oracles import label, xtb_oracle
from multiscale.potentials import AEVParameters, ANIEnsemble, ANIModel, LennardJones
from multiscale.learning import StructureDataset, write_structures
from multiscale.learning.transfer import (TransferError, default_config, fine_tune, load_pretrained,
                                         refit_self_energies)
from multiscale.reference.molecules import displaced_molecules

ELEMENTS = ["H", "C", "N", "O"]
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _example(name: str):
    """An example script as a module (the GFN1 -> GFN2 demonstration lives in examples/)."""
    spec = importlib.util.spec_from_file_location(Path(name).stem, EXAMPLES / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
PARAMS = AEVParameters.evenly(Rcr=5.2, Rca=3.5, EtaR=16.0, n_radial=6, EtaA=8.0, Zeta=32.0, n_angular=2,
                              n_sections=4)


def small_ani(seed: int, hidden=(12, 8), repulsion=None) -> ANIModel:
    return ANIModel(ELEMENTS, PARAMS, hidden, {"H": -13.6, "C": -48.5, "N": -71.0, "O": -102.0},
                    seed=seed, repulsion=repulsion).double()


@pytest.fixture(scope="module")
def gfn2_set():
    """12 displaced small molecules labelled by GFN2-xTB."""
    return label(displaced_molecules(12, seed=5), xtb_oracle("GFN2-xTB"), progress=lambda _m: None)


def energies_forces(model, atoms):
    atoms = atoms.copy()
    atoms.calc = multiscale.MultiscaleCalculator(model)
    return atoms.get_potential_energy(), atoms.get_forces()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kind", ["model", "ensemble", "ensemble with a ZBL core"])
def test_exported_file_rebuilds_the_model(tmp_path, gfn2_set, dtype, kind):
    core = {"inner": 0.6, "outer": 1.2} if "ZBL" in kind else None
    if kind == "model":
        model = small_ani(0, hidden={"H": (12, 8), "C": (16,), "N": (8, 8, 4), "O": (10, 6)})
    else:
        model = ANIEnsemble([small_ani(0, repulsion=core), small_ani(1, hidden=(6,), repulsion=core)])
    path = multiscale.export(model.to(dtype), tmp_path / "pre.pt")
    rebuilt = load_pretrained(path)
    assert type(rebuilt) is type(model) and next(rebuilt.parameters()).dtype == dtype
    assert rebuilt.metadata() == model.metadata()
    for a, b in zip(rebuilt.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)
    again = multiscale.export(rebuilt, tmp_path / "again.pt")
    e0, f0 = energies_forces(path, gfn2_set[3])
    e1, f1 = energies_forces(again, gfn2_set[3])
    assert e1 == e0 and np.array_equal(f1, f0)
    if core:   # the core is rebuilt (the probe has pairs inside it) and survives fine-tuning
        assert rebuilt.repulsion.outer == 1.2
        tuned = fine_tune(path, gfn2_set[:4], "frozen", config=default_config("frozen", epochs=1))
        assert tuned.repulsion is not None and tuned.repulsion.inner == 0.6


def test_only_ani_files_transfer(tmp_path):
    lj = multiscale.export(LennardJones(["Ar"], 0.0104, 3.4, 8.5), tmp_path / "lj.pt")
    with pytest.raises(TransferError, match="transfer learning needs an ANI model"):
        load_pretrained(lj)


def linear_weights(model: ANIModel) -> list[list[torch.Tensor]]:
    """Per element network, each linear layer's weight and bias concatenated."""
    return [[torch.cat([m.weight.detach().flatten(), m.bias.detach()]).clone()
             for m in net if isinstance(m, torch.nn.Linear)] for net in model.networks.networks]


@pytest.mark.parametrize("mode, layers, learn", [("frozen", 1, [False, False, True]),
                                                 ("frozen", 2, [False, True, True]),
                                                 ("adapted", 1, [True, True, True])])
def test_modes_train_what_they_say(gfn2_set, mode, layers, learn):
    pretrained = small_ani(0)
    before = copy.deepcopy(pretrained)
    tuned = fine_tune(pretrained, gfn2_set, mode, layers, default_config(mode, epochs=2),
                      log=lambda _m: None)
    for net_before, net_after in zip(linear_weights(before), linear_weights(tuned)):
        assert [not torch.equal(a, b) for a, b in zip(net_before, net_after)] == learn
    assert all(p.requires_grad for p in tuned.parameters())
    for a, b in zip(pretrained.state_dict().values(), before.state_dict().values()):
        assert torch.equal(a, b)  # the pretrained model is left alone
    assert torch.equal(pretrained.networks.self_energies, before.networks.self_energies)


def test_self_energy_refit_leaves_no_composition_residual(gfn2_set):
    model = small_ani(0)
    dataset = StructureDataset(gfn2_set, ELEMENTS, model.cutoff)
    refit_self_energies(model, dataset)
    predicted = []
    for atoms in gfn2_set:
        edge_index, vectors = neighbors.edges(atoms.positions, atoms.cell.array, atoms.pbc, model.cutoff)
        species = torch.tensor([ELEMENTS.index(s) for s in atoms.get_chemical_symbols()])
        with torch.no_grad():
            predicted.append(float(model(species, edge_index, vectors, len(atoms))["energies"].sum()))
    residual = dataset.energies() - np.array(predicted)
    counts = dataset.composition(len(ELEMENTS))
    # least squares: the residual is orthogonal to every element's count
    assert np.abs(counts.T @ residual).max() < 1e-8 * np.abs(dataset.energies()).max()


def test_bad_requests_are_refused(gfn2_set):
    with pytest.raises(TransferError, match="mode must be one of"):
        fine_tune(small_ani(0), gfn2_set, "thawed", log=lambda _m: None)
    with pytest.raises(TransferError, match="layers must be between 1 and 3"):
        fine_tune(small_ani(0), gfn2_set, "frozen", layers=4, log=lambda _m: None)
    silicon = ANIModel(["Si"], PARAMS, (4,), seed=0).double()
    with pytest.raises(ValueError, match="contains"):
        fine_tune(silicon, gfn2_set, "frozen", log=lambda _m: None)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "multiscale.cli", *map(str, args)],
                          capture_output=True, text=True)


def test_transfer_command(tmp_path, gfn2_set):
    pretrained = multiscale.export(ANIEnsemble([small_ani(0), small_ani(1)]), tmp_path / "pre.pt")
    data = write_structures(tmp_path / "gfn2.extxyz", gfn2_set)
    out = tmp_path / "tuned.pt"
    proc = cli("transfer", pretrained, data, "--mode", "adapted", "--epochs", 2, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "self energies refit" in proc.stdout and f"wrote {out}" in proc.stdout
    tuned = load_pretrained(out)  # the result is an ANI file again, ready for more fine-tuning
    assert tuned.metadata().elements == tuple(ELEMENTS) and len(tuned.members) == 2
    assert energies_forces(out, gfn2_set[0])[0] != energies_forces(pretrained, gfn2_set[0])[0]

    lj = multiscale.export(LennardJones(["Ar"], 0.0104, 3.4, 8.5), tmp_path / "lj.pt")
    proc = cli("transfer", lj, data, "-o", tmp_path / "x.pt")
    assert proc.returncode == 2 and "needs an ANI model" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_fine_tuned_beats_training_from_scratch():
    """Pretrained on 120 GFN1-xTB structures, fine-tuned on 20 GFN2-xTB structures (frozen:
    last layer; adapted) against the best of four from-scratch runs on the 20; held out: 60
    GFN2-xTB structures (docs/training.md has the full-size run)."""
    demonstrate = _example("transfer/gfn1_to_gfn2.py").demonstrate
    results = demonstrate(n_pretrain=120, n_small=20, n_test=60, pretrain_epochs=100, epochs=150, seed=0,
                          log=lambda _m: None)
    scratch = [row for name, row in results.items() if name.startswith("scratch")]
    assert len(scratch) == 4
    best_energy = min(row["energy_mae_meV_per_atom"] for row in scratch)
    best_forces = min(row["force_rmse_eV_per_A"] for row in scratch)
    for name in ("frozen, last layer", "adapted"):
        assert results[name]["energy_mae_meV_per_atom"] < 0.75 * best_energy, (name, results)
        assert results[name]["force_rmse_eV_per_A"] < 0.5 * best_forces, (name, results)
    # the self-energy refit alone removes the oracles' per-element offsets (eV per atom)
    assert results["pretrained, self energies refit"]["energy_mae_meV_per_atom"] < \
        0.05 * results["pretrained (GFN1-xTB)"]["energy_mae_meV_per_atom"]
