"""pair_style multiscale with the reference models equals LAMMPS' native styles."""

import numpy as np
import pytest

import multiscale
from lmp_runs import DUMP, THERMO, relative, run_ok
from multiscale.potentials import LennardJones, Morse, StillingerWeber

pytestmark = pytest.mark.mpi

LJ = dict(epsilon=0.0104, sigma=3.405, cutoff=8.0)
MORSE = dict(d0=0.3429, alpha=1.3588, r0=2.866, cutoff=6.0)


@pytest.fixture(scope="module")
def models(model_dir, si_sw_file):
    return {
        "lj": multiscale.export(LennardJones(["Ar"], **LJ), model_dir / "lj.pt"),
        "lj_shift": multiscale.export(LennardJones(["Ar"], **LJ, shift=True), model_dir / "ljs.pt"),
        "morse": multiscale.export(Morse(["Cu"], **MORSE), model_dir / "morse.pt"),
        "sw": multiscale.export(StillingerWeber(si_sw_file, ["Si"]), model_dir / "sw.pt"),
    }


def native_lines(kind, si_sw_file):
    return {
        "lj": [f"pair_style lj/cut {LJ['cutoff']}", f"pair_coeff * * {LJ['epsilon']} {LJ['sigma']}"],
        "lj_shift": [f"pair_style lj/cut {LJ['cutoff']}", f"pair_coeff * * {LJ['epsilon']} {LJ['sigma']}",
                     "pair_modify shift yes"],
        "morse": [f"pair_style morse {MORSE['cutoff']}",
                  f"pair_coeff * * {MORSE['d0']} {MORSE['alpha']} {MORSE['r0']}"],
        "sw": ["pair_style sw", f"pair_coeff * * {si_sw_file} Si"],
    }[kind]


ELEMENT = {"lj": "Ar", "lj_shift": "Ar", "morse": "Cu", "sw": "Si"}
LATTICE = {"lj": "fcc 5.26", "lj_shift": "fcc 5.26", "morse": "fcc 3.615", "sw": "diamond 5.431"}
BOXES = {
    "orthogonal": ["region box block 0 4 0 4 0 4", "boundary p p p"],
    "triclinic": ["region box prism 0 4 0 4 0 4 0.7 -0.4 0.3", "boundary p p p"],
    "slab": ["region box block 0 4 0 4 -1 5", "boundary p p f"],
}


def script(kind, box, pair_lines, seed=12345):
    fill = "region atoms block 0 4 0 4 0 4" if box == "slab" else "region atoms prism 0 4 0 4 0 4 0.7 -0.4 0.3" \
        if box == "triclinic" else "region atoms block 0 4 0 4 0 4"
    return "\n".join([
        "units metal", "atom_style atomic", "atom_modify map array", f"lattice {LATTICE[kind]}",
        BOXES[box][1], BOXES[box][0], fill, "create_box 1 box", "create_atoms 1 region atoms",
        "mass 1 30.0", f"displace_atoms all random 0.15 0.15 0.15 {seed} units box",
        *pair_lines, *DUMP, "run 0", *THERMO]) + "\n"


@pytest.mark.parametrize("box", list(BOXES))
@pytest.mark.parametrize("kind", ["lj", "lj_shift", "morse", "sw"])
def test_equals_native_on_one_and_two_ranks(tmp_path, models, si_sw_file, kind, box):
    native = run_ok(script(kind, box, native_lines(kind, si_sw_file)), tmp_path / "native", ranks=1)
    ours_lines = [f"pair_style multiscale {models[kind]}", f"pair_coeff * * {ELEMENT[kind]}"]
    for ranks in (1, 2):
        ours = run_ok(script(kind, box, ours_lines), tmp_path / f"ours{ranks}", ranks=ranks)
        assert abs(ours["pe"] - native["pe"]) <= 1e-10 * abs(native["pe"])
        assert relative(ours["forces"], native["forces"]) <= 1e-10
        assert relative(ours["pressure"], native["pressure"]) <= 1e-10
        assert relative(ours["energies"], native["energies"]) <= 1e-10
        assert relative(ours["stresses"], native["stresses"]) <= 1e-10
    assert np.abs(native["forces"]).max() > 1e-3


def test_four_ranks_equal_one(tmp_path, models, si_sw_file):
    lines = [f"pair_style multiscale {models['sw']}", "pair_coeff * * Si"]
    one = run_ok(script("sw", "triclinic", lines), tmp_path / "r1", ranks=1)
    four = run_ok(script("sw", "triclinic", lines), tmp_path / "r4", ranks=4)
    assert abs(four["pe"] - one["pe"]) <= 1e-12 * abs(one["pe"])
    for key in ("forces", "pressure", "energies", "stresses"):
        assert relative(four[key], one[key]) <= 1e-11, key


def nve_script(pair_lines, steps):
    return "\n".join([
        "units metal", "atom_style atomic", "lattice diamond 5.431", "region box block 0 3 0 3 0 3",
        "create_box 1 box", "create_atoms 1 box", "mass 1 28.0855", *pair_lines,
        "velocity all create 1500.0 87287 mom yes rot yes", "fix nve all nve", "timestep 0.001",
        "thermo_style custom step pe ke etotal", "thermo_modify format float %.15g",
        'fix out all print 100 "$(step) $(pe:%.15g) $(etotal:%.15g)" file traj.txt screen no',
        f"run {steps}"]) + "\n"


@pytest.mark.slow
def test_nve_trajectory_follows_native(tmp_path, models, si_sw_file):
    native_dir, ours_dir = tmp_path / "native", tmp_path / "ours"
    from lmp_runs import run
    assert run(nve_script(native_lines("sw", si_sw_file), 1000), native_dir, 2).returncode == 0
    proc = run(nve_script([f"pair_style multiscale {models['sw']}", "pair_coeff * * Si"], 1000), ours_dir, 2)
    assert proc.returncode == 0, proc.stdout[-2000:]
    native = np.loadtxt(native_dir / "traj.txt")
    ours = np.loadtxt(ours_dir / "traj.txt")
    assert native.shape == ours.shape == (11, 3)
    # chaotic divergence grows from round-off; over 1 ps it stays far below thermal fluctuations
    assert np.abs(ours[:, 1] - native[:, 1]).max() < 1e-6 * abs(native[0, 1])
    assert abs(ours[-1, 2] - ours[0, 2]) < 1e-3 * 216 * 0.2  # total energy conserved


def mixed_script(pair_lines):
    return "\n".join([
        "units metal", "atom_style atomic", "atom_modify map array", "lattice diamond 5.431",
        "region box block 0 3 0 3 0 3", "create_box 2 box", "create_atoms 1 box",
        "set type 1 type/fraction 2 0.25 777", "mass * 28.0",
        "displace_atoms all random 0.1 0.1 0.1 4321 units box", *pair_lines, *DUMP, "run 0",
        *THERMO]) + "\n"


def test_hybrid_overlay_with_null_types(tmp_path, models, si_sw_file):
    """Type 1 by the SW model, type 2 left to lj/cut: equals the same split with native sw."""
    lj = ["pair_coeff 1 2 lj/cut 0.02 2.2", "pair_coeff 2 2 lj/cut 0.03 2.3"]
    native = run_ok(mixed_script(["pair_style hybrid/overlay sw lj/cut 6.0",
                                  f"pair_coeff * * sw {si_sw_file} Si NULL", *lj]), tmp_path / "native")
    for ranks in (1, 2):
        ours = run_ok(mixed_script([f"pair_style hybrid/overlay multiscale {models['sw']} lj/cut 6.0",
                                    "pair_coeff * * multiscale Si NULL", *lj]), tmp_path / f"ours{ranks}", ranks)
        assert abs(ours["pe"] - native["pe"]) <= 1e-10 * abs(native["pe"])
        for key in ("forces", "pressure", "energies", "stresses"):
            assert relative(ours[key], native[key]) <= 1e-10, key


def test_float32_option(tmp_path, models, si_sw_file):
    """`dtype float32` runs the model in single precision: within 1e-6 (energy) and 1e-5 (forces)."""
    native = run_ok(script("sw", "triclinic", native_lines("sw", si_sw_file)), tmp_path / "native")
    ours = run_ok(script("sw", "triclinic", [f"pair_style multiscale {models['sw']} dtype float32",
                                             "pair_coeff * * Si"]), tmp_path / "ours")
    assert abs(ours["pe"] - native["pe"]) <= 1e-6 * abs(native["pe"])
    assert relative(ours["forces"], native["forces"]) <= 1e-5
    assert relative(ours["stresses"], native["stresses"]) <= 1e-5
    assert relative(ours["forces"], native["forces"]) > 1e-12  # it really ran in float32
