"""The atomistic (111)[1-10] crack-tip region (multiscale.atomistic.region) with native SW, and the
quasi-static loading rule (multiscale.coupling.loading).

References: the crystal is checked against ASE's independently generated diamond lattice; loads
against the Griffith K_G from the potential's own elastic constants and relaxed (111) surface
energy; forces against Newton's third law; 1 vs 2 MPI ranks against each other.
"""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from multiscale.reference import properties
from multiscale.coupling.loading import QuasiStaticLoading
from multiscale.atomistic.region import CrackRegion, RegionError
from multiscale.atomistic.tip import find_tip
from multiscale.engines.lammps import pair_lines

SW_LINES = pair_lines("sw")[0]   # native Stillinger-Weber (LAMMPS Si.sw)

RADIUS, BOUNDARY = 26.0, 8.0
# lattice trapping band of the (111) shuffle crack with native SW, measured in docs/crack_region.md
# (first advance 2.25-2.35 K_G for R = 30-80 Å); the Griffith load is the rigorous lower bound
BAND = (1.0, 2.5)


@pytest.fixture(scope="module")
def sw():
    a = properties.lattice_constant(SW_LINES)
    gamma = properties.surface_energy(SW_LINES, a, "111")
    return {"a": a, "gamma": gamma}


def spec(sw, **kw):
    return {"potential": "sw", "radius": RADIUS, "boundary": BOUNDARY, "lattice_constant": sw["a"],
            "fmax": 1e-3, "max_iterations": 3000, "dump_every": 0, **kw}


@pytest.fixture
def region(sw, tmp_path):
    reg = CrackRegion(spec(sw), None, tmp_path, log=lambda msg: None)
    yield reg
    reg.close()


def k_griffith(region, sw):
    return region.field.griffith_k(sw["gamma"])


def k_field(region, k, tip=(0.0, 0.0)):
    return region.field.displacements(region.boundary_reference, k, tip=tip)


# -- geometry ------------------------------------------------------------------------------------
def test_crystal_is_the_ase_diamond_lattice_cut_at_the_shuffle_plane(region, sw):
    from ase.lattice.cubic import Diamond
    a = sw["a"]
    px, py, pz = a * math.sqrt(6) / 2, a * math.sqrt(3), a * math.sqrt(2) / 2
    n = int(RADIUS / min(px, py)) + 3
    block = Diamond(directions=[[1, 1, -2], [1, 1, 1], [1, -1, 0]], size=(2 * n, 2 * n, 1),
                    latticeconstant=a, symbol="Si").positions
    assert len(block) == 12 * (2 * n) ** 2           # 12 atoms per period cell (volume 1.5 a^3)
    # find ASE's shuffle gaps (the wide gaps between (111) planes) and bond columns, independently
    planes = np.unique(np.round(block[:, 1], 4))
    gaps = np.diff(planes)
    assert set(np.round(gaps, 2)) == {round(a * math.sqrt(3) / 12, 2), round(a * math.sqrt(3) / 4, 2)}
    wide = np.flatnonzero(np.isclose(gaps, a * math.sqrt(3) / 4, atol=1e-3))
    k = wide[np.argmin(np.abs(planes[wide] - n * py))]       # a shuffle gap near the block's centre
    shift_y = (planes[k] + planes[k + 1]) / 2
    columns = np.unique(np.round(block[np.isclose(block[:, 1], planes[k], atol=1e-3), 0], 4))
    assert np.allclose(np.diff(columns), px / 2, atol=1e-3)  # bond columns px/2 apart
    shift_x = columns[np.argmin(np.abs(columns - n * px))] + px / 4   # midway between two columns
    theirs = block - [shift_x, shift_y, 0]
    theirs = theirs[np.hypot(theirs[:, 0], theirs[:, 1]) < RADIUS]
    ours = region.reference
    assert len(ours) == len(theirs) == region.n_atoms

    # a translation along the periodic z is a symmetry: align one atom next to the tip
    probe = lambda p: p[np.argmin(np.hypot(p[:, 0] + px / 4, p[:, 1] + a * math.sqrt(3) / 8)), 2]  # noqa: E731
    theirs[:, 2] += probe(ours) - probe(theirs)

    def canonical(p):
        p = np.column_stack([p[:, 0], p[:, 1], np.round(p[:, 2] % pz, 4) % round(pz, 4)])
        return p[np.lexsort(np.round(p, 3).T[::-1])]

    assert np.abs(canonical(ours) - canonical(theirs)).max() < 1e-4
    # the crack plane y = 0 lies in a wide (shuffle) gap: nearest planes at +-a sqrt(3)/8, then the
    # narrow gap of a sqrt(3)/12 to the next planes
    y = np.unique(np.round(ours[:, 1], 6))
    h = a * math.sqrt(3) / 8
    assert np.min(np.abs(y)) == pytest.approx(h, abs=1e-6)
    assert np.sort(y[y > 0])[1] - h == pytest.approx(a * math.sqrt(3) / 12, abs=1e-6)
    assert np.sort(-y[y < 0])[1] - h == pytest.approx(a * math.sqrt(3) / 12, abs=1e-6)
    # the shell is exactly the atoms beyond R - boundary, listed in boundary_reference
    r = np.hypot(ours[:, 0], ours[:, 1])
    assert len(region.boundary_reference) == np.count_nonzero(r > RADIUS - BOUNDARY)
    assert np.all(np.hypot(*region.boundary_reference.T) > RADIUS - BOUNDARY)


def test_bad_specs_are_rejected_with_the_fix(sw, tmp_path):
    with pytest.raises(ValueError, match="boundary = 2.0 Å is thinner than the potential's range 3.77"):
        CrackRegion(spec(sw, boundary=2.0), None, tmp_path)
    # a message-passing model's range is cutoff x hops: si-attention's 3 x 5.0 Å
    from multiscale.atomistic.spec import check_potential, potential
    attention = potential("si-attention")
    assert attention.reach == pytest.approx(15.0) and attention.plugin
    with pytest.raises(ValueError, match=r"boundary = 8.0 Å is thinner .* 15.00 Å .*cutoff 5.0 Å x 3 hops.*set boundary >= 15.00"):
        check_potential({"boundary": 8.0}, attention)
    check_potential({"boundary": 15.0}, attention)
    with pytest.raises(ValueError, match=r"unknown keys \['radious'\]"):
        CrackRegion({**spec(sw), "radious": 3}, None, tmp_path)
    with pytest.raises(ValueError, match="enlarge radius"):
        CrackRegion(spec(sw, radius=12.0), None, tmp_path)
    with pytest.raises(FileNotFoundError, match="neither 'sw', a shipped model"):
        CrackRegion(spec(sw, potential=str(tmp_path / "missing.pt")), None, tmp_path)


# -- loading the crack -------------------------------------------------------------------------------
def test_boundary_is_applied_exactly_and_reactions_balance(region, sw):
    kg = k_griffith(region, sw)
    u = k_field(region, 0.9 * kg)
    assert region.fit_k(u)[0] == pytest.approx(0.9 * kg, rel=1e-10)
    result = region.relax(u, 0)
    pos = region.state()["positions"]
    assert np.abs(pos[region.shell, :2] - (region.boundary_reference + u)).max() < 1e-9
    assert np.abs(pos[region.shell, 2] - region.reference[region.shell, 2]).max() < 1e-9
    assert result["n_atoms"] == region.n_atoms and result["converged"]
    assert result["fmax"] <= 1e-3
    # the relaxed interior is in equilibrium, so by Newton's third law (translation invariance of
    # the potential) the forces on the shell sum to zero
    reaction = result["reaction"]
    assert reaction.shape == (len(region.shell), 2)
    assert np.abs(reaction).max() > 0.1
    assert np.abs(reaction.sum(axis=0)).max() < 1e-3 * len(region.interior)
    # the K-field tip sits midway between the bond columns at x = +-1.66 Å
    assert abs(result["tip"][0]) < 1.0 and result["tip"][1] == 0.0
    # per-atom stress ahead of the tip follows the LEFM field (sigma_yy within 25% at 6-12 Å)
    xy, sigma = result["stress_xy"], result["stress"]
    ahead = (xy[:, 0] > 6) & (xy[:, 0] < 12) & (np.abs(xy[:, 1]) < 2.5)
    lefm = region.field.stresses(xy[ahead], 0.9 * kg)
    assert np.count_nonzero(ahead) >= 4
    assert np.mean(sigma[ahead, 1]) == pytest.approx(np.mean(lefm[:, 1]), rel=0.25)


def test_no_advance_below_griffith_and_advance_above_the_band(region, sw):
    kg = k_griffith(region, sw)
    for f in (0.8, 0.9, 1.0):
        result = region.relax(k_field(region, f * kg), 0)
        assert abs(result["tip"][0]) < 1.0, f"crack moved at {f} K_G"
    result = region.relax(k_field(region, (BAND[1] + 0.1) * kg), 1)
    assert result["tip"][0] > 2.0, f"no advance at {BAND[1] + 0.1} K_G: tip {result['tip']}"


def test_state_restore_gives_an_identical_next_relax(region, sw):
    kg = k_griffith(region, sw)
    region.relax(k_field(region, 0.9 * kg), 0)
    saved = region.state()
    first = region.relax(k_field(region, 1.0 * kg), 1)
    region.relax(k_field(region, 0.5 * kg), 2)   # somewhere else
    region.restore(saved)
    again = region.relax(k_field(region, 1.0 * kg), 1)
    assert again["energy"] == pytest.approx(first["energy"], rel=1e-12)
    assert again["iterations"] == first["iterations"]
    assert np.abs(again["reaction"] - first["reaction"]).max() < 1e-9
    assert np.array_equal(again["tip"], first["tip"])


def test_nan_and_overlapping_displacements_raise_region_error(region, sw):
    u = k_field(region, 0.9 * k_griffith(region, sw))
    bad = u.copy()
    bad[3, 1] = np.nan
    with pytest.raises(RegionError, match="not finite") as err:
        region.relax(bad, 0)
    assert err.value.kind == "nan"
    region.relax(u, 0)
    # put one shell atom onto a neighbouring shell atom: the energy explodes
    crash = u.copy()
    shell_z = region.reference[region.shell, 2]
    d = np.hypot(*(region.boundary_reference - region.boundary_reference[0]).T)
    d[np.abs(shell_z - shell_z[0]) > 1e-6] = np.inf     # a shell atom at the same z
    other = np.argsort(d)[1]
    crash[0] = region.boundary_reference[other] + u[other] - region.boundary_reference[0] + 1e-3
    with pytest.raises(RegionError, match="overlap") as err:
        region.relax(crash, 1)
    assert err.value.kind in ("nan", "diverged")


def test_dump_writes_every_atom(region, sw, tmp_path):
    region.relax(k_field(region, 0.9 * k_griffith(region, sw)), 0)
    region.dump(tmp_path / "x.dump")
    lines = (tmp_path / "x.dump").read_text().splitlines()
    assert int(lines[3]) == region.n_atoms
    from ase.io import read
    atoms = read(tmp_path / "x.dump", format="lammps-dump-text")
    assert set(atoms.get_chemical_symbols()) == {"Si"} and list(atoms.pbc) == [False, False, True]
    from scipy.spatial.distance import pdist   # the same configuration (atom order and origin aside)
    assert np.abs(np.sort(pdist(atoms.positions)) - np.sort(pdist(region.state()["positions"]))).max() < 1e-7


# -- 1 vs 2 ranks ------------------------------------------------------------------------------------
MPI_SCRIPT = """
import json, sys
import numpy as np
from mpi4py import MPI
from multiscale.atomistic.region import CrackRegion
a, k1, k2, out = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
spec = {"potential": "sw", "radius": %r, "boundary": %r, "lattice_constant": a, "fmax": 1e-4,
        "max_iterations": 5000, "dump_every": 0}
reg = CrackRegion(spec, MPI.COMM_WORLD, out + ".d", log=lambda m: None)
rows = []
for k in (k1, k2):
    r = reg.relax(reg.field.displacements(reg.boundary_reference, k), len(rows))
    rows.append({"energy": r["energy"], "tip": r["tip"].tolist(), "reaction": r["reaction"].tolist(),
                 "stress": r["stress"].tolist(), "positions": reg.state()["positions"].tolist()})
if MPI.COMM_WORLD.rank == 0:
    json.dump(rows, open(out, "w"))
reg.close()
""" % (RADIUS, BOUNDARY)


@pytest.mark.mpi
def test_one_and_two_ranks_agree(sw, tmp_path):
    script = tmp_path / "region_mpi.py"
    script.write_text(MPI_SCRIPT)
    bindir = Path(sys.executable).parent
    mpiexec = shutil.which("mpiexec", path=str(bindir)) or "mpiexec"
    reg = CrackRegion(spec(sw), None, tmp_path, log=lambda msg: None)
    kg = k_griffith(reg, sw)
    reg.close()
    pz = sw["a"] * math.sqrt(2) / 2
    runs = {}
    for n in (1, 2):
        out = tmp_path / f"ranks{n}.json"
        proc = subprocess.run([mpiexec, "-n", str(n), sys.executable, str(script), repr(sw["a"]),
                               repr(0.9 * kg), repr(1.1 * kg), str(out)], capture_output=True, text=True,
                              timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[n] = json.loads(out.read_text())
    for one, two in zip(runs[1], runs[2]):
        assert two["energy"] == pytest.approx(one["energy"], rel=1e-9)
        assert two["tip"] == one["tip"]
        assert np.abs(np.array(two["reaction"]) - one["reaction"]).max() < 1e-5
        d = np.array(two["positions"]) - one["positions"]
        d[:, 2] -= pz * np.round(d[:, 2] / pz)           # z is periodic
        assert np.abs(d).max() < 1e-5
        assert np.abs(np.array(two["stress"]) - one["stress"]).max() < 1e-3   # GPa


# -- tip finding -----------------------------------------------------------------------------------
def test_tip_ignores_broken_bonds_ahead_and_one_bridge_behind():
    x = np.arange(10) * 3.0
    ref = np.zeros((20, 3))
    ref[0::2, 0] = ref[1::2, 0] = x
    ref[0::2, 1], ref[1::2, 1] = 1.0, -1.0
    bonds = np.stack([np.arange(0, 20, 2), np.arange(1, 20, 2)], axis=1)
    opening = np.array([5, 5, 1, 5, 5, 0, 0, 0, 5, 0], float)   # bridge at 2, stray break at 8
    pos = ref.copy()
    pos[0::2, 1] += opening / 2
    pos[1::2, 1] -= opening / 2
    tip, broken = find_tip(pos, ref, bonds, broken_length=3.0)
    assert broken.tolist() == [True, True, False, True, True, False, False, False, True, False]
    assert tip == pytest.approx(13.5)   # between the bonds at x = 12 (broken) and 15 (intact)
    tip, _ = find_tip(ref, ref, bonds, broken_length=3.0)
    assert tip == pytest.approx(-1.5)


# -- the loading rule --------------------------------------------------------------------------------
def test_loading_ramps_until_advance_then_follows_the_tip():
    load = QuasiStaticLoading(k_start=50.0, k_step=5.0, k_max=70.0, advance_threshold=2.0)
    k, tip = load.initial()
    assert (k, tip.tolist()) == (50.0, [0.0, 0.0])
    k, tip = load.next({"tip": [1.5, 0.0], "energy": -1.0})          # 1.5 Å: not an advance
    assert (k, tip.tolist()) == (55.0, [0.0, 0.0])
    k, tip = load.next({"tip": [6.65, 0.0], "energy": -2.0})         # advance: keep K, move the tip
    assert (k, tip.tolist()) == (55.0, [6.65, 0.0])
    k, tip = load.next({"tip": [6.65, 0.0], "energy": -3.0})
    assert (k, tip.tolist()) == (60.0, [6.65, 0.0])
    saved = load.state()
    assert load.next({"tip": [7.0, 0.0]}) == (65.0, pytest.approx([6.65, 0.0]))
    assert load.next({"tip": [7.0, 0.0]})[0] == 70.0
    assert load.next({"tip": [7.0, 0.0]}) is None                   # K would exceed k_max
    assert [r["advanced"] for r in load.history] == [False, True, False, False, False, False]
    assert load.first_advance()["K"] == 55.0
    load.restore(json.loads(json.dumps(saved)))
    assert load.next({"tip": [7.0, 0.0]}) == (65.0, pytest.approx([6.65, 0.0]))
    assert len(load.history) == 4
    # the tip reaching the region's edge ends the run
    assert load.next({"tip": [20.0, 0.0], "tip_limit": 18.0}) is None


def test_loading_rejects_bad_parameters():
    with pytest.raises(ValueError, match="k_step > 0"):
        QuasiStaticLoading(k_start=1.0, k_step=0.0, k_max=2.0)
    with pytest.raises(ValueError, match="raise k_max"):
        QuasiStaticLoading(k_start=3.0, k_step=0.1, k_max=2.0)
    with pytest.raises(ValueError, match="not a finite number"):
        QuasiStaticLoading(k_start=math.nan, k_step=0.1, k_max=2.0)


# -- the shipped ML model against native SW -------------------------------------------------------------
def first_advance(reg, k_g, factors):
    for f in factors:
        result = reg.relax(k_field(reg, f * k_g), 0)
        if result["tip"][0] > 2.0:
            return f
    return math.inf


@pytest.mark.slow
def test_ml_model_first_advance_is_in_the_band_and_near_sw(sw, tmp_path):
    import torch

    from multiscale.model import registry
    torch.set_num_threads(1)
    if "si-ani" not in registry.shipped_models():
        pytest.skip("the shipped si-ani model is not built; run `multiscale build-silicon-model`")
    factors = [0.9, 1.0, 1.5, 1.8, 2.0] + [round(2.05 + 0.05 * i, 2) for i in range(12)]
    runs = {}
    for name, potential in (("sw", "sw"), ("ml", "si-ani")):
        reg = CrackRegion(spec(sw, potential=potential, radius=30.0, lattice_constant=None,
                               max_iterations=5000), None, tmp_path / name, log=lambda msg: None)
        gamma = properties.surface_energy(reg.pair_lines, reg.lattice_constant, "111", plugin=reg.plugin)
        k_g = reg.field.griffith_k(gamma)
        runs[name] = (first_advance(reg, k_g, factors), k_g)
        reg.close()
    for name, (f, k_g) in runs.items():
        assert BAND[0] <= f <= BAND[1], f"{name}: first advance at {f} K_G, outside the band {BAND}"
    k_sw, k_ml = (runs[n][0] * runs[n][1] for n in ("sw", "ml"))
    assert k_ml == pytest.approx(k_sw, rel=0.10)
