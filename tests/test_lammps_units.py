"""`units real` (kcal/mol, Å, fs) beside `metal`: the plugin converts energies, forces and
virials at its boundary with LAMMPS' own factor; charges stay in e."""

import numpy as np
import pytest

import multiscale
from lmp_runs import DUMP, THERMO, relative, run, run_ok
from multiscale.potentials import StillingerWeber
from test_lammps_parity import script as parity_script

pytestmark = pytest.mark.mpi
KCAL_PER_EV = 23.060549   # LAMMPS' utils::get_conversion_factor(ENERGY, METAL2REAL)


def _in_units(text, units):
    return text.replace("units metal", f"units {units}")


def test_real_units_equal_native_sw_converted_by_lammps(tmp_path, model_dir, si_sw_file):
    """Native sw converts its metal-unit file to real itself; ours must give the same."""
    model = multiscale.export(StillingerWeber(si_sw_file, ["Si"]), model_dir / "sw_units.pt")
    native_lines = ["pair_style sw", f"pair_coeff * * {si_sw_file} Si"]
    ours_lines = [f"pair_style multiscale {model}", "pair_coeff * * Si"]
    native = run_ok(_in_units(parity_script("sw", "triclinic", native_lines), "real"), tmp_path / "native", 1)
    metal = run_ok(parity_script("sw", "triclinic", ours_lines), tmp_path / "metal", 1)
    for ranks in (1, 2):
        ours = run_ok(_in_units(parity_script("sw", "triclinic", ours_lines), "real"), tmp_path / f"r{ranks}", ranks)
        assert abs(ours["pe"] - native["pe"]) <= 1e-10 * abs(native["pe"]), ranks
        for key in ("forces", "energies", "stresses", "pressure"):
            assert relative(ours[key], native[key]) <= 1e-10, (ranks, key)
    assert abs(native["pe"] / metal["pe"] - KCAL_PER_EV) <= 1e-6
    assert relative(native["forces"] / KCAL_PER_EV, metal["forces"]) <= 1e-10


def test_charges_stay_in_e_under_real_units(tmp_path, model_dir):
    import ase.io
    from charged_models import TwoPassCharges
    from test_reductions import box_of_molecules
    model = multiscale.export(TwoPassCharges(["H", "C", "O"]), model_dir / "two_pass_units.pt")
    atoms = box_of_molecules(n=30, length=8.0)
    atoms.set_initial_charges(np.zeros(len(atoms)))
    ase.io.write(tmp_path / "data.lmp", atoms, format="lammps-data", specorder=["H", "C", "O"], masses=True,
                 atom_style="charge")
    lines = ["atom_style charge", "atom_modify map array", "read_data ../data.lmp",
             f"pair_style multiscale {model} charge 1.0 spin 2", "pair_coeff * * H C O", *DUMP,
             "dump q all custom 1 q.txt x y z q", "dump_modify q sort id format float %.17g", "run 0", *THERMO]
    out = {}
    for units in ("metal", "real"):
        out[units] = run_ok("\n".join([f"units {units}", *lines]) + "\n", tmp_path / units, 1)
        rows = np.loadtxt(tmp_path / units / "q.txt", skiprows=9)
        out[units]["q"] = rows[np.lexsort(np.round(rows[:, :3], 4).T[::-1]), 3]
    assert np.array_equal(out["metal"]["q"], out["real"]["q"]) and abs(out["real"]["q"].sum() - 1.0) <= 1e-10
    assert abs(out["real"]["pe"] / out["metal"]["pe"] - KCAL_PER_EV) <= 1e-6


def test_other_unit_styles_are_refused(tmp_path, model_dir, si_sw_file):
    model = multiscale.export(StillingerWeber(si_sw_file, ["Si"]), model_dir / "sw_units.pt")
    text = _in_units(parity_script("sw", "orthogonal", [f"pair_style multiscale {model}", "pair_coeff * * Si"]), "si")
    proc = run(text, tmp_path / "si")
    assert proc.returncode != 0
    assert "supports `units metal` (Å, eV) and `units real` (Å, kcal/mol), not units si" in proc.stdout + proc.stderr


def test_real_and_metal_trajectories_agree(tmp_path, model_dir, si_sw_file):
    """100 NVE steps of 1 fs from the same velocities, in metal and in real units.  Ours equals
    native sw in each unit style to 1e-10 (positions, pe/atom, stress/atom of the last step).
    Between the two styles the trajectories differ by what LAMMPS' own unit constants allow
    (its metal and real boltz, mvv2e and ftm2v agree to ~1e-8, not 1e-10): native sw
    differs exactly as much, so the plugin adds nothing to it."""
    model = multiscale.export(StillingerWeber(si_sw_file, ["Si"]), model_dir / "sw_units.pt")
    pairs = {"ours": [f"pair_style multiscale {model}", "pair_coeff * * Si"],
             "native": ["pair_style sw", f"pair_coeff * * {si_sw_file} Si"]}
    out = {}
    for who, lines in pairs.items():
        for units, dt in (("metal", 0.001), ("real", 1.0)):
            text = _in_units(parity_script("sw", "orthogonal", lines), units).replace("run 0\n", "\n".join([
                "velocity all create 600.0 4928459 mom yes rot yes", "fix nve all nve", f"timestep {dt}",
                "run 100", ""]), 1)
            got = run_ok(text, tmp_path / f"{who}_{units}", 2)
            rows = (tmp_path / f"{who}_{units}" / "atoms.txt").read_text().splitlines()
            n = int(rows[3])
            # by atom ID (dump_modify sort id): the same 2-rank create_atoms numbering in every run
            got["x"] = np.array([[float(v) for v in r.split()[:3]] for r in rows[9:9 + n]])
            out[who, units] = got
    for units in ("metal", "real"):
        ours, native = out["ours", units], out["native", units]
        assert np.abs(ours["x"] - native["x"]).max() <= 1e-10, units
        assert relative(ours["energies"], native["energies"]) <= 1e-10, units
        assert relative(ours["stresses"], native["stresses"]) <= 1e-10, units
    drift = {who: np.abs(out[who, "metal"]["x"] - out[who, "real"]["x"]).max() for who in pairs}
    assert drift["ours"] <= 1e-6 and abs(drift["ours"] - drift["native"]) <= 1e-10
