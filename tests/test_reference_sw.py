"""The Stillinger-Weber reference model equals LAMMPS' native pair_style sw."""

import numpy as np
import pytest
from ase.build import bulk, surface

import multiscale
from multiscale.potentials import StillingerWeber
from native_lammps import relative, single_point, voigt


def silicon_cells():
    rng = np.random.default_rng(7)
    cubic = bulk("Si", "diamond", a=5.431, cubic=True) * (2, 2, 2)
    strained = cubic.copy()
    strained.set_cell(cubic.cell @ np.array([[1.03, 0.02, 0], [0.02, 0.98, 0.01], [0, 0.01, 1.01]]),
                      scale_atoms=True)
    slab = surface(bulk("Si", "diamond", a=5.431), (1, 1, 1), layers=4, vacuum=6.0, periodic=True)
    slab = slab * (2, 2, 1)
    tric = bulk("Si", "diamond", a=5.431) * (3, 3, 3)  # primitive fcc cell: triclinic
    tric.set_cell(tric.cell @ (np.eye(3) + 0.03 * rng.standard_normal((3, 3))), scale_atoms=True)
    cells = {"bulk": cubic, "strained": strained, "surface111": slab, "triclinic": tric}
    for name, atoms in cells.items():
        atoms.rattle(0.08, seed=len(name))
    return cells


@pytest.fixture(scope="module")
def sw_model(si_sw_file, model_dir):
    return multiscale.load(multiscale.export(StillingerWeber(si_sw_file, ["Si"]), model_dir / "sw.pt"))


@pytest.mark.parametrize("name", ["bulk", "strained", "surface111", "triclinic"])
def test_sw_equals_native_lammps(name, sw_model, si_sw_file):
    atoms = silicon_cells()[name]
    ref = single_point(atoms, ["pair_style sw", f"pair_coeff * * {si_sw_file} Si"])
    held = ref["atoms"]
    held.calc = multiscale.MultiscaleCalculator(sw_model)
    assert abs(held.get_potential_energy() - ref["energy"]) <= 1e-8 * abs(ref["energy"])
    assert relative(held.get_forces(), ref["forces"]) <= 1e-8
    assert relative(held.get_potential_energies(), ref["energies"]) <= 1e-8
    # ASE stress is -W/V (Voigt xx yy zz yz xz xy); compare the virial itself
    stress = held.get_stress(voigt=False)
    assert relative(voigt(-stress * ref["volume"]), ref["virial"]) <= 1e-8
    stresses = held.get_stresses()  # (N, 6) ASE Voigt order
    w_atoms = -stresses[:, [0, 1, 2, 5, 4, 3]] * ref["volume"]
    assert relative(w_atoms, ref["virials"]) <= 1e-8
    assert np.abs(held.get_forces()).max() > 0.1  # a rattled cell: the comparison is not trivial


def test_multi_element_sw_file(tmp_path):
    """A two-element .sw file with distinct parameters per triplet, against native sw."""
    lines = []
    params = {"Si": (2.1683, 2.0951), "Ge": (1.93, 2.181)}
    for a in params:
        for b in params:
            for c in params:
                eps = np.sqrt(params[a][0] * params[b][0]) if b == c else params[a][0]
                sig = 0.5 * (params[a][1] + params[b][1]) if b == c else params[a][1]
                lam = 21.0 + (a == "Ge") * 3.0 + (b != c) * 1.5
                lines.append(f"{a} {b} {c} {eps} {sig} 1.80 {lam} 1.20 -0.333333333333 "
                             "7.049556277 0.6022245584 4.0 0.0 0.0")
    path = tmp_path / "SiGe.sw"
    path.write_text("\n".join(lines) + "\n")
    atoms = bulk("Si", "diamond", a=5.5, cubic=True) * (2, 2, 2)
    atoms.symbols[::3] = "Ge"
    atoms.rattle(0.1, seed=3)
    model = multiscale.load(multiscale.export(StillingerWeber(path, ["Si", "Ge"]), tmp_path / "sige.pt"))
    ref = single_point(atoms, ["pair_style sw", f"pair_coeff * * {path} Ge Si"], specorder=["Ge", "Si"])
    held = ref["atoms"]
    held.calc = multiscale.MultiscaleCalculator(model)
    assert abs(held.get_potential_energy() - ref["energy"]) <= 1e-8 * abs(ref["energy"])
    assert relative(held.get_forces(), ref["forces"]) <= 1e-8
    assert relative(held.get_potential_energies(), ref["energies"]) <= 1e-8


def test_sw_file_errors(tmp_path, si_sw_file):
    from multiscale.potentials import read_sw_file
    with pytest.raises(ValueError, match="no entry for element triplet Si Si C"):
        read_sw_file(si_sw_file, ["Si", "C"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_sw_file(tmp_path / "missing.sw", ["Si"])
