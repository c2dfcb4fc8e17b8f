"""The AIMNet2-class potential: aimnet's own AIMNet2 (0.2.0) for the same weights, exact total
charge in every engine, LAMMPS on 1 to 3 ranks equal to ASE for a charged open-shell box."""

import os

import numpy as np
import pytest
import torch
from ase.build import molecule

import multiscale
from lmp_runs import DUMP, THERMO, relative, run_ok
from multiscale.potentials.aimnet2 import AIMNet2Potential, from_aimnet2
from test_reductions import box_of_molecules

import aimnet  # noqa: E402  (the test extra, as torchani is for ANI)


@pytest.fixture(scope="module")
def reference():
    """aimnet's AIMNet2 (its shipped architecture, two charge channels) with random weights;
    the charge-weight heads biased to O(1) so that aimnet's eps on sum(f) is negligible."""
    import yaml
    from aimnet.config import build_module
    with open(os.path.join(os.path.dirname(aimnet.__file__), "models", "aimnet2.yaml")) as fh:
        cfg = yaml.safe_load(fh)
    cfg["kwargs"]["num_charge_channels"] = 2
    torch.manual_seed(0)
    model = build_module(cfg).double()
    with torch.no_grad():
        for mlp in model.mlps[:-1]:
            [m for m in mlp if isinstance(m, torch.nn.Linear)][-1].bias[2:4] += 1.0
    return model


@pytest.fixture(scope="module")
def converted(reference, model_dir):
    return multiscale.export(from_aimnet2(reference, ["H", "C", "N", "O"]).double(), model_dir / "aimnet2.pt")


@pytest.mark.parametrize("name,charge,spin", [("CH3CH2OH", 1.0, 2), ("CH3CONH2", -1.0, 2),
                                              ("H2O", 0.0, 3), ("CH3NO2", -2.0, 1)])
def test_equals_aimnet(reference, converted, name, charge, spin):
    atoms = molecule(name)
    coord = torch.tensor(atoms.positions[None], dtype=torch.float64, requires_grad=True)
    out = reference({"coord": coord, "numbers": torch.tensor(atoms.numbers[None]),
                     "charge": torch.tensor([charge], dtype=torch.float64),
                     "mult": torch.tensor([float(spin)], dtype=torch.float64)})
    energy = out["energy"].sum()
    forces = -torch.autograd.grad(energy, coord)[0][0].numpy()
    energy = energy.detach()
    theirs_q = out["charges"][0].detach().numpy()
    atoms.calc = multiscale.MultiscaleCalculator(converted, charge=charge, spin=spin)
    assert abs(atoms.get_potential_energy() - float(energy)) <= 1e-5 * abs(float(energy))
    assert relative(atoms.get_forces(), forces) <= 1e-5
    assert np.abs(atoms.get_charges() - theirs_q).max() <= 1e-6
    assert abs(atoms.get_charges().sum() - charge) <= 1e-10      # exact; aimnet's misses by ~1e-8


def test_dsf_coulomb_equals_aimnet_and_is_smooth_at_its_cutoff(reference, tmp_path):
    """aimnet's "dsf" (nvalchemiops, self term included) for the same charges; energy and
    force go to zero at the DSF cutoff."""
    import copy
    theirs = copy.deepcopy(reference)
    lr = [m for m in theirs.outputs.children() if type(m).__name__ == "LRCoulomb"][0]
    lr.method, lr.dsf_rc = "dsf", 9.0
    ours = from_aimnet2(theirs, ["H", "C", "N", "O"]).double()
    assert ours.coulomb == "dsf" and ours.cutoff == 12.0
    atoms = molecule("CH3CONH2")
    data = {"coord": torch.tensor(atoms.positions[None]), "numbers": torch.tensor(atoms.numbers[None]),
            "charge": torch.tensor([-1.0], dtype=torch.float64), "mult": torch.tensor([2.0], dtype=torch.float64)}
    with torch.no_grad():
        expected = float(theirs(data)["energy"].sum())
    atoms.calc = multiscale.MultiscaleCalculator(multiscale.export(ours, tmp_path / "dsf.pt"), charge=-1.0, spin=2)
    assert abs(atoms.get_potential_energy() - expected) <= 1e-6 * abs(expected)
    # an H and a C beyond each other's features: only the DSF term depends on r, and its energy
    # and force go continuously to zero at r = dsf_rc
    from ase import Atoms
    pair = AIMNet2Potential(["H", "C"], nfeature=2, ncomb_v=2, nshifts=4, rc_s=2.0, hidden=((4,), (4,), (4,)),
                            aim_size=4, out_hidden=(4,), coulomb="dsf", dsf_rc=6.0, cutoff=6.0).double()
    calc = multiscale.MultiscaleCalculator(multiscale.export(pair, tmp_path / "pair.pt"), charge=0.0, spin=2)
    values = {}
    for r in (5.0, 6.0 - 1e-6, 6.5):
        dimer = Atoms("HC", positions=[[0, 0, 0], [r, 0, 0]])
        dimer.calc = calc
        values[r] = (dimer.get_potential_energy(), dimer.get_forces()[1, 0], dimer.get_charges())
    assert abs(values[5.0][2][0]) > 1e-3                   # the ions carry charge
    assert abs(values[5.0][1]) > 1e-4                      # and attract or repel at 5 Å
    assert abs(values[6.0 - 1e-6][0] - values[6.5][0]) < 1e-10 and abs(values[6.0 - 1e-6][1]) < 1e-8


def _small(seed=1):
    return AIMNet2Potential(["H", "C", "O"], rc_s=3.5, nshifts=6, nfeature=4, ncomb_v=4,
                            hidden=((16,), (16,), (16,)), aim_size=16, out_hidden=(8,),
                            coulomb="dsf", dsf_rc=4.0, cutoff=4.0, seed=seed).double()


@pytest.mark.mpi
def test_lammps_ranks_equal_ase_for_a_charged_open_shell_box(tmp_path, model_dir):
    import ase.io
    path = multiscale.export(_small(), model_dir / "aimnet2_small.pt")
    atoms = box_of_molecules(seed=4, n=36, length=11.0)
    ase.io.write(tmp_path / "data.lmp", atoms, format="lammps-data", specorder=["H", "C", "O"], masses=True)
    electrons = int(atoms.get_atomic_numbers().sum()) - 1
    spin = 2 if electrons % 2 else 3
    atoms.calc = multiscale.MultiscaleCalculator(path, charge=1.0, spin=spin)
    assert abs(atoms.get_charges().sum() - 1.0) <= 1e-10
    order = np.lexsort(np.round(atoms.positions, 4).T[::-1])
    script = "\n".join(["units metal", "atom_style atomic", "atom_modify map array", "read_data ../data.lmp",
                        "comm_modify mode single", f"pair_style multiscale {path} charge 1.0 spin {spin}",
                        "pair_coeff * * H C O", *DUMP, "run 0", *THERMO]) + "\n"
    first = None
    for ranks in (1, 2, 3):
        got = run_ok(script, tmp_path / f"r{ranks}", ranks)
        assert abs(got["pe"] - atoms.get_potential_energy()) <= 1e-10 * abs(got["pe"]), ranks
        assert relative(got["forces"], atoms.get_forces()[order]) <= 1e-10, ranks
        first = first or got
        assert relative(got["stresses"], first["stresses"]) <= 1e-10, ranks


def test_convert_command_reads_aimnet_files(reference, tmp_path):
    """An aimnet model file in its own format (state dict, configuration without the Coulomb
    module, metadata asking for it) through `multiscale convert aimnet2` equals the module."""
    import copy
    import yaml
    from multiscale.cli import main
    with open(os.path.join(os.path.dirname(aimnet.__file__), "models", "aimnet2.yaml")) as fh:
        cfg = yaml.safe_load(fh)
    cfg["kwargs"]["num_charge_channels"] = 2
    core = copy.deepcopy(cfg)
    del core["kwargs"]["outputs"]["lrcoulomb"]
    state = {k: v for k, v in reference.state_dict().items() if "lrcoulomb" not in k}
    torch.save({"model_yaml": yaml.dump(core), "state_dict": state, "cutoff": 5.0, "format_version": 2,
                "needs_coulomb": True, "coulomb_mode": "simple", "coulomb_sr_rc": 4.6,
                "coulomb_sr_envelope": "exp", "implemented_species": [1, 6, 7, 8]}, tmp_path / "theirs.pt")
    assert main(["convert", "aimnet2", str(tmp_path / "theirs.pt"), "-o", str(tmp_path / "ours.pt")]) == 0
    direct = multiscale.export(from_aimnet2(reference, ["H", "C", "N", "O"]).double(), tmp_path / "direct.pt")
    energies = []
    for path in (tmp_path / "ours.pt", direct):
        atoms = molecule("CH3CH2OH")
        atoms.calc = multiscale.MultiscaleCalculator(path, charge=1.0, spin=2)
        energies.append(atoms.get_potential_energy())
    # aimnet's loader builds float32 weights: the file's float64 ones arrive rounded
    assert abs(energies[0] - energies[1]) <= 1e-6 * abs(energies[1])


def test_dsf_model_forces_are_finite_differences_in_a_periodic_box(model_dir):
    path = multiscale.export(_small(), model_dir / "aimnet2_small_fd.pt")
    atoms = box_of_molecules(seed=4, n=24, length=8.0)
    spin = 2 if (int(atoms.get_atomic_numbers().sum()) - 1) % 2 else 3

    def calc(a):
        a = a.copy()
        a.calc = multiscale.MultiscaleCalculator(path, charge=1.0, spin=spin)
        return a
    forces = calc(atoms).get_forces()
    h = 1e-5
    for a, c in [(0, 0), (3, 1), (7, 2), (11, 0), (20, 1)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[a, c] += h
        minus.positions[a, c] -= h
        fd = -(calc(plus).get_potential_energy() - calc(minus).get_potential_energy()) / (2 * h)
        assert abs(fd - forces[a, c]) <= 1e-7 * max(1.0, abs(forces[a, c]))
