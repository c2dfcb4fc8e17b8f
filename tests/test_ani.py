"""ANI models: AEVs and energies equal torchani's; contract invariants; export; engines."""

import dataclasses
import os

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from ase.units import Hartree

os.environ.setdefault("TORCHANI_NO_WARN_EXTENSIONS", "1")  # torchani warns about its CUDA extensions
import torchani  # noqa: E402
from torchani.aev import AEVComputer as TorchaniAEV  # noqa: E402

import multiscale  # noqa: E402
from multiscale.engines import neighbors  # noqa: E402
from multiscale.potentials import (AEVComputer, AEVParameters, ANIEnsemble, ANIModel,  # noqa: E402
                                   committee_disagreement, from_torchani)
from multiscale.potentials.aev import ANI1X_ELEMENTS, ANI2X_ELEMENTS  # noqa: E402
from multiscale.potentials.ani import build_ani  # noqa: E402

KINDS = {"ani1x": (AEVParameters.ani1x, TorchaniAEV.like_1x, ANI1X_ELEMENTS),
         "ani2x": (AEVParameters.ani2x, TorchaniAEV.like_2x, ANI2X_ELEMENTS)}


def random_structure(seed: int, n: int, n_elements: int, box: float, min_distance: float = 0.9):
    """n atoms in a cube of side ``box`` Å, no two closer than ``min_distance``; (positions, species)."""
    rng = np.random.default_rng(seed)
    positions = []
    while len(positions) < n:
        p = rng.uniform(0.0, box, 3)
        if all(np.linalg.norm(p - q) >= min_distance for q in positions):
            positions.append(p)
    return np.array(positions), rng.integers(0, n_elements, n)


# two molecules (no cell) and two periodic cells: a cube and a small triclinic cell whose
# atoms see several images of themselves within the cutoff
STRUCTURES = {
    "molecule-12": (12, 4.0, None),
    "molecule-30": (30, 6.0, None),
    "cube": (24, 6.5, np.diag([6.5, 6.5, 6.5])),
    "triclinic": (10, 4.2, np.array([[4.2, 0.0, 0.0], [1.1, 4.4, 0.0], [-0.7, 0.9, 4.6]])),
}


def edges_of(positions, cell, cutoff):
    pbc = cell is not None
    return neighbors.edges(positions, cell if pbc else np.zeros((3, 3)), pbc, cutoff)


def torchani_call_args(positions, species, cell, dtype):
    coords = torch.tensor(positions, dtype=dtype).unsqueeze(0)
    kwargs = {}
    if cell is not None:
        kwargs = {"cell": torch.tensor(cell, dtype=dtype), "pbc": torch.tensor([True, True, True])}
    return torch.as_tensor(species).unsqueeze(0), coords, kwargs


def torchani_model(kind: str, members: int, seed: int = 0):
    """A torchani ANI model (random weights) with ANI-1x/2x AEVs, layers and self energies."""
    asm = torchani.arch.Assembler(periodic_table_index=False)
    asm.set_symbols(KINDS[kind][2])
    asm.set_global_cutoff_fn("cosine")
    asm.set_aev_computer(angular=kind, radial=kind)
    asm.set_atomic_networks(ctor=kind)
    asm.set_gsaes_as_self_energies("wb97x-631gd")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return asm.assemble(members).double()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_parameters_are_torchanis(kind):
    ours, theirs = KINDS[kind][0](), KINDS[kind][1]()
    assert (ours.Rcr, ours.Rca) == (theirs.radial.cutoff, theirs.angular.cutoff)
    for mine, buffer in [(ours.EtaR, theirs.radial.eta), (ours.ShfR, theirs.radial.shifts),
                         (ours.EtaA, theirs.angular.eta), (ours.Zeta, theirs.angular.zeta),
                         (ours.ShfA, theirs.angular.shifts), (ours.ShfZ, theirs.angular.sections)]:
        # torchani keeps its constants in float32
        np.testing.assert_allclose(np.atleast_1d(mine), buffer.numpy(), rtol=1e-7, atol=0)
    assert AEVComputer(ours, len(KINDS[kind][2])).length == theirs.out_dim
    start = ours.ShfR[0]
    remade = AEVParameters.evenly(ours.Rcr, ours.Rca, ours.EtaR, len(ours.ShfR), ours.EtaA, ours.Zeta,
                                  len(ours.ShfA), len(ours.ShfZ), start=start)
    for name in ("ShfR", "ShfA", "ShfZ"):
        np.testing.assert_allclose(getattr(remade, name), getattr(ours, name), rtol=1e-14)


@pytest.mark.parametrize("structure", sorted(STRUCTURES))
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_aev_equals_torchani(kind, structure):
    params_of, torchani_of, elements = KINDS[kind]
    n, box, cell = STRUCTURES[structure]
    positions, species = random_structure(sorted(STRUCTURES).index(structure), n, len(elements), box)
    edge_index, edge_vectors = edges_of(positions, cell, params_of().cutoff)
    reference = torchani_of().double()
    s, coords, kwargs = torchani_call_args(positions, species, cell, torch.float64)
    expected = reference(s, coords, **kwargs)[0]
    assert expected.abs().max() > 0.1  # a real environment, not an empty one

    # our ANI-1x / ANI-2x constants, in float64, against torchani's own computer
    ours = AEVComputer(params_of(), len(elements))(torch.as_tensor(species), edge_index, edge_vectors, n)
    assert ours.shape == expected.shape
    assert (ours - expected).abs().max() <= 1e-6
    # the same float32-rounded constants torchani holds: equal to rounding
    same = AEVParameters(Rcr=reference.radial.cutoff, Rca=reference.angular.cutoff,
                         EtaR=float(reference.radial.eta), ShfR=reference.radial.shifts.tolist(),
                         EtaA=float(reference.angular.eta), Zeta=float(reference.angular.zeta),
                         ShfA=reference.angular.shifts.tolist(), ShfZ=reference.angular.sections.tolist())
    ours = AEVComputer(same, len(elements))(torch.as_tensor(species), edge_index, edge_vectors, n)
    assert (ours - expected).abs().max() <= 1e-12
    # float32 both sides
    s, coords, kwargs = torchani_call_args(positions, species, cell, torch.float32)
    expected32 = torchani_of()(s, coords, **kwargs)[0]
    ours32 = AEVComputer(params_of(), len(elements))(torch.as_tensor(species), edge_index,
                                                      edge_vectors.float(), n)
    assert (ours32 - expected32).abs().max() <= 1e-5


@pytest.mark.parametrize("structure", ["molecule-30", "triclinic"])
@pytest.mark.parametrize("kind,members", [("ani1x", 1), ("ani2x", 2)])
def test_energies_and_forces_equal_torchani(tmp_path, kind, members, structure):
    """torchani's model with random weights, converted: same energies (eV) and forces."""
    reference = torchani_model(kind, members)
    ours = from_torchani(reference)
    assert isinstance(ours, ANIEnsemble if members > 1 else ANIModel)
    n, box, cell = STRUCTURES[structure]
    positions, species = random_structure(7, n, len(KINDS[kind][2]), box)
    s, coords, kwargs = torchani_call_args(positions, species, cell, torch.float64)
    coords.requires_grad_(True)
    atomic = reference.atomic_energies((s, coords), **kwargs).energies[0] * Hartree
    (grad,) = torch.autograd.grad(atomic.sum(), coords)
    atomic = atomic.detach()
    path = multiscale.export(ours, tmp_path / "converted.pt")
    atoms = Atoms(numbers=[1] * n, positions=positions, cell=cell, pbc=cell is not None)
    atoms.set_chemical_symbols([KINDS[kind][2][k] for k in species])
    atoms.calc = multiscale.MultiscaleCalculator(path)
    np.testing.assert_allclose(atoms.get_potential_energies(), atomic.numpy(), rtol=1e-10, atol=1e-9)
    assert atoms.get_potential_energy() == pytest.approx(float(atomic.sum()), rel=1e-12)
    # torch's CELU backward scales by 1/alpha rounded to float32 (derivatives.yaml: 1.0 /
    # alpha.toFloat()), so torchani's forces carry ~1e-7 relative error; ours (the exported
    # file's native networks) take the exact slope (test_native_ops)
    forces = -grad[0].numpy()
    np.testing.assert_allclose(atoms.get_forces(), forces, rtol=0, atol=1e-6 * np.abs(forces).max())
    if members > 1:
        values = reference((s, coords.detach()), ensemble_values=True, **kwargs).energies[:, 0].detach()
        edge_index, edge_vectors = edges_of(positions, cell, ours.cutoff)
        mine = ours.member_energies(torch.as_tensor(species), edge_index, edge_vectors, n)
        np.testing.assert_allclose(mine.sum(1).detach().numpy(), values.numpy() * Hartree, rtol=1e-12)
        qbc = reference.energies_qbcs((s, coords.detach()), **kwargs).qbcs[0].detach() * Hartree
        assert committee_disagreement(mine) == pytest.approx(float(qbc), rel=1e-9)


@pytest.fixture(scope="module")
def ani_file(model_dir):
    return multiscale.export(ANIModel.like_ani1x(seed=1).double(), model_dir / "ani1x.pt")


def chno_atoms(seed=3, n=40, box=8.5, periodic=True):
    positions, species = random_structure(seed, n, 4, box, min_distance=1.0)
    atoms = Atoms([ANI1X_ELEMENTS[k] for k in species], positions=positions,
                  cell=np.diag([box] * 3) if periodic else None, pbc=periodic)
    return atoms


@pytest.mark.parametrize("periodic", [False, True])
def test_forces_and_stress_are_finite_differences(ani_file, periodic):
    atoms = chno_atoms(periodic=periodic)
    atoms.calc = multiscale.MultiscaleCalculator(ani_file)
    forces = atoms.get_forces()
    assert np.abs(forces).max() > 0.01
    numeric = calculate_numerical_forces(atoms, eps=1e-4)
    np.testing.assert_allclose(forces, numeric, rtol=0, atol=1e-6 * np.abs(forces).max())
    np.testing.assert_allclose(forces.sum(0), 0.0, atol=1e-10)
    if periodic:
        stress = atoms.get_stress()
        numeric = calculate_numerical_stress(atoms, eps=1e-5)
        np.testing.assert_allclose(stress, numeric, rtol=0, atol=1e-6 * np.abs(stress).max())


def test_invariant_under_permutation_rotation_translation(ani_file):
    atoms = chno_atoms(periodic=False)
    atoms.calc = multiscale.MultiscaleCalculator(ani_file)
    energies, forces = atoms.get_potential_energies(), atoms.get_forces()
    order = np.random.default_rng(0).permutation(len(atoms))
    moved = atoms[order]
    moved.rotate(37.0, (1.0, 2.0, -0.5), center="COM")
    moved.translate((3.0, -1.0, 0.5))
    moved.calc = multiscale.MultiscaleCalculator(ani_file)
    np.testing.assert_allclose(moved.get_potential_energies(), energies[order], rtol=1e-10, atol=1e-10)
    rotation = np.linalg.lstsq(atoms.positions[order] - atoms.positions[order].mean(0),
                               moved.positions - moved.positions.mean(0), rcond=None)[0]
    np.testing.assert_allclose(moved.get_forces(), forces[order] @ rotation, atol=1e-9)


def test_only_local_atoms_count():
    """With ghosts, energies are (n_local,) and equal the full system's for those atoms."""
    model = ANIModel.like_ani1x(seed=2).double()
    positions, species = random_structure(4, 20, 4, 5.0)
    edge_index, edge_vectors = edges_of(positions, None, model.cutoff)
    species = torch.as_tensor(species)
    full = model(species, edge_index, edge_vectors, 20)["energies"]
    local = model(species, edge_index, edge_vectors, 8)["energies"]
    assert local.shape == (8,)
    torch.testing.assert_close(local, full[:8], rtol=1e-14, atol=1e-14)
    isolated = model(species[:1], torch.zeros((2, 0), dtype=torch.long),
                     torch.zeros((0, 3), dtype=torch.float64), 1)["energies"]
    assert isolated.shape == (1,) and torch.isfinite(isolated).all()


def test_ensemble_is_mean_of_members_and_exports_member_energies(tmp_path):
    members = [ANIModel.like_ani1x(seed=s, self_energies={"H": -13.6, "C": -1029.8, "N": -1485.1,
                                                          "O": -2042.0}) for s in range(3)]
    ensemble = ANIEnsemble(members).double()
    positions, species = random_structure(5, 25, 4, 5.5)
    edge_index, edge_vectors = edges_of(positions, None, ensemble.cutoff)
    species = torch.as_tensor(species)
    each = torch.stack([m.double()(species, edge_index, edge_vectors, 25)["energies"] for m in members])
    got = ensemble.member_energies(species, edge_index, edge_vectors, 25)
    torch.testing.assert_close(got, each, rtol=1e-14, atol=1e-12)
    torch.testing.assert_close(ensemble(species, edge_index, edge_vectors, 25)["energies"], each.mean(0))
    totals = each.sum(1).detach().numpy()
    assert committee_disagreement(got) == pytest.approx(np.std(totals, ddof=1) / np.sqrt(25), rel=1e-12)
    assert committee_disagreement(got[:1]) == 0.0

    loaded = multiscale.load(multiscale.export(ensemble, tmp_path / "ensemble.pt"))
    assert loaded.metadata.name == "ani-ensemble" and loaded.metadata.dtype == "float64"
    torch.testing.assert_close(loaded.module.member_energies(species, edge_index, edge_vectors, 25), got,
                               rtol=1e-14, atol=1e-12)
    with pytest.raises(ValueError, match="other AEV parameters"):
        ANIEnsemble([members[0], ANIModel(ANI1X_ELEMENTS, AEVParameters.ani2x())])
    with pytest.raises(ValueError, match="elements"):
        ANIEnsemble([members[0], ANIModel.like_ani2x()])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("native", [False, True])
def test_export_round_trip(tmp_path, dtype, native):
    """A file with the torch AEV (native=False) computes what the Python model does, bit for
    bit; the default file's native AEV (double inside) agrees to the dtype's precision."""
    model = ANIModel.like_ani2x(seed=0).to(getattr(torch, dtype))
    loaded = multiscale.load(multiscale.export(model, tmp_path / "ani2x.pt", native=native))
    meta = loaded.metadata
    assert meta.elements == ANI2X_ELEMENTS and meta.cutoff == 5.1 and meta.hops == 1
    assert meta.dtype == dtype and "Chem. Sci. 8, 3192 (2017)" in meta.citation
    positions, species = random_structure(6, 18, 7, 5.0)
    edge_index, edge_vectors = edges_of(positions, None, meta.cutoff)
    args = (torch.as_tensor(species), edge_index, edge_vectors.to(loaded.dtype), 18)
    tolerance = {"float64": 1e-12, "float32": 2e-6}[dtype] if native else 0.0
    torch.testing.assert_close(loaded.module(*args)["energies"], model(*args)["energies"],
                               rtol=tolerance, atol=tolerance)


def test_float32_agrees_with_float64():
    model = ANIModel.like_ani1x(seed=4, self_energies={"H": -13.6, "C": -1029.8, "N": -1485.1, "O": -2042.0})
    positions, species = random_structure(8, 30, 4, 6.0)
    edge_index, edge_vectors = edges_of(positions, None, model.cutoff)
    e32 = model.float()(torch.as_tensor(species), edge_index, edge_vectors.float(), 30)["energies"]
    e64 = model.double()(torch.as_tensor(species), edge_index, edge_vectors, 30)["energies"]
    assert e32.dtype == torch.float32 and e64.dtype == torch.float64
    np.testing.assert_allclose(e32.detach().numpy(), e64.detach().numpy(), rtol=2e-6)


def test_custom_parameters_for_silicon(tmp_path):
    from ase.build import bulk
    params = AEVParameters.evenly(Rcr=6.0, Rca=4.5, EtaR=8.0, n_radial=12, EtaA=4.0, Zeta=8.0,
                                  n_angular=4, n_sections=6, start=1.5)
    model = ANIModel(["Si"], params, hidden=(32, 16), self_energies={"Si": -5.0}, seed=0).double()
    assert model.aev.length == 12 + 4 * 6 and model.metadata().cutoff == 6.0
    atoms = bulk("Si", "diamond", a=5.431, cubic=True)
    atoms.calc = multiscale.MultiscaleCalculator(multiscale.export(model, tmp_path / "si.pt"))
    energies = atoms.get_potential_energies()
    np.testing.assert_allclose(energies, energies[0], rtol=1e-12)  # all atoms equivalent
    np.testing.assert_allclose(atoms.get_forces(), 0.0, atol=1e-10)
    with pytest.raises(ValueError, match="hidden gives no layer widths"):
        ANIModel(["Si", "C"], params, hidden={"Si": (8,)})
    with pytest.raises(ValueError, match="Rca must be a positive number"):
        AEVParameters.evenly(6.0, -1.0, 8.0, 4, 4.0, 8.0, 2, 2)


def test_build_ani_from_plain_values():
    """The builder training configurations (TOML) use."""
    model = build_ani(["Si"], aev={"Rcr": 6.0, "Rca": 4.5, "EtaR": 8.0, "n_radial": 12, "EtaA": 4.0,
                                  "Zeta": 8.0, "n_angular": 4, "n_sections": 6, "start": 1.5},
                      hidden=[16, 8], self_energies={"Si": -4.0}, seed=0)
    assert model.aev.params == AEVParameters.evenly(6.0, 4.5, 8.0, 12, 4.0, 8.0, 4, 6, start=1.5)
    assert model.hidden == [(16, 8)]
    assert build_ani(ANI2X_ELEMENTS, aev="ani2x").aev.length == 1008
    explicit = dict(dataclasses.asdict(AEVParameters.ani1x()))
    assert build_ani(ANI1X_ELEMENTS, aev=explicit).aev.params == AEVParameters.ani1x()
    with pytest.raises(ValueError, match="aev must be one of"):
        build_ani(["Si"], aev="ani3x")
    with pytest.raises(ValueError, match="n_radial"):
        build_ani(["Si"], aev={"Rcr": 6.0})


@pytest.mark.mpi
def test_lammps_one_and_two_ranks_equal_ase(tmp_path, ani_file):
    """pair_style multiscale with ANI: ghosts as neighbours and angular terms across ranks."""
    import ase.io

    from lmp_runs import DUMP, THERMO, relative, run_ok
    atoms = chno_atoms(seed=9, n=60, box=11.0)
    ase.io.write(tmp_path / "data.lmp", atoms, format="lammps-data", specorder=list(ANI1X_ELEMENTS),
                 masses=True)
    script = "\n".join(["units metal", "atom_style atomic", "read_data ../data.lmp",
                        f"pair_style multiscale {ani_file}", "pair_coeff * * H C N O",
                        *DUMP, "run 0", *THERMO]) + "\n"
    atoms = atoms[np.lexsort(np.round(atoms.positions, 4).T[::-1])]  # the order lmp_runs.read uses
    atoms.calc = multiscale.MultiscaleCalculator(ani_file)
    for ranks in (1, 2):
        res = run_ok(script, tmp_path / f"r{ranks}", ranks=ranks)
        assert res["pe"] == pytest.approx(atoms.get_potential_energy(), rel=1e-11)
        assert relative(res["forces"], atoms.get_forces()) <= 1e-9
        assert relative(res["energies"], atoms.get_potential_energies()) <= 1e-10
