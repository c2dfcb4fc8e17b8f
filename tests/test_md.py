"""Crack runs at temperature (`[run] mode = "md"`): the rank-independent Langevin noise, the K-rate
loading, the configuration's checks, the thermostat's temperature, and real coupled runs under
mpiexec: the crack runs forward once it starts, a region on 2 ranks follows the 1-rank trajectory,
a restart from a checkpoint continues it bit for bit, an injected NaN ends the run cleanly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from multiscale.atomistic.thermal import BOLTZMANN, MVV2E, langevin_noise
from multiscale.coupling.config import ConfigError, parse_config
from multiscale.coupling.loading import DynamicLoading
from test_coupling import history, launch, ok

# a native SW region of R = 30 Å (542 atoms) under a fast K rate: it starts running at
# 2.57 K_G after 5.25 ps and reaches the region's edge before 6 ps
MD = """
[run]
output = "{output}"
mode = "md"
checkpoint_every = 20
timeout = 120
{extra_run}
[loading]
k_start = 1.0
k_max = 2.6
[md]
temperature = 300.0
k_rate = 0.3
duration = 8.0
[atomistic]
potential = "sw"
radius = 30.0
[[region]]
name = "tip"
ranks = {ranks}
{extra}"""


def md_config(folder, name="run", ranks=1, extra_run="", extra=""):
    path = folder / f"{name}.toml"
    path.write_text(MD.format(output=folder / name, ranks=ranks, extra_run=extra_run, extra=extra))
    return path


# -- pieces ---------------------------------------------------------------------------------------
def test_langevin_noise_is_keyed_by_seed_and_step_only():
    a = langevin_noise(7, 120, 5000)
    np.testing.assert_array_equal(a, langevin_noise(7, 120, 5000))          # any rank, any restart
    np.testing.assert_array_equal(a[:300], langevin_noise(7, 120, 5000)[:300])
    assert not np.allclose(a, langevin_noise(7, 121, 5000)) and not np.allclose(a, langevin_noise(8, 120, 5000))
    assert abs(a.mean()) < 0.03 and abs(a.std() - 1) < 0.02                 # standard normal, 15000 draws
    steps = np.stack([langevin_noise(7, s, 4)[:, 0] for s in range(2000)])
    assert abs(np.corrcoef(steps[1:, 0], steps[:-1, 0])[0, 1]) < 0.1       # white in time


def test_dynamic_loading_rate_cap_tip_following_and_stops():
    kg = 60.0
    load = DynamicLoading(k_start=kg, k_rate=0.5 * kg, k_max=1.5 * kg, interval=0.05, duration=1.0)
    assert load.initial()[0] == kg
    tips = [0.0, 0.0, 3.3, 0.0, 3.3, 3.3, 6.6]       # one flicker at the third exchange
    fields = []
    for j, x in enumerate(tips):
        k, tip = load.next({"time": 0.05 * j, "tip": [x, 0.0], "energy": -1.0, "temperature": 300.0})
        assert k == pytest.approx(kg * (1 + 0.5 * 0.05 * (j + 1)))         # K at the exchange's end
        fields.append(tip[0])
    assert fields == [0.0, 0.0, 0.0, 0.0, 3.3, 3.3, 3.3]                  # median of 3: no jolt by the flicker
    assert load.history[-1]["velocity"] == pytest.approx(100 * np.polyfit([0.1, .15, .2, .25, .3],
                                                                          tips[2:], 1)[0])
    for j in range(7, 40):
        nxt = load.next({"time": 0.05 * j, "tip": [6.6, 0.0]})
        if nxt is None:
            break
        assert nxt[0] <= 1.5 * kg
    assert load.history[-1]["time"] == pytest.approx(1.0)                  # ends at the duration
    again = DynamicLoading(k_start=kg, k_rate=0.5 * kg, k_max=1.5 * kg, interval=0.05, duration=1.0)
    again.restore(load.state())
    assert again.history == load.history and again.k == load.k
    edge = DynamicLoading(k_start=kg, k_rate=0.0, k_max=kg, interval=0.05, duration=1.0)
    assert edge.next({"time": 0.0, "tip": [20.0, 0.0], "tip_limit": 18.0}) is None
    with pytest.raises(ValueError, match="non-finite crack tip"):
        edge.next({"time": 0.05, "tip": [math.nan, 0.0]})


GOOD = '[atomistic]\npotential = "sw"\n[[region]]\nname = "tip"\n'


@pytest.mark.parametrize("text, message", [
    ("[md]\ntemperature = 300.0\n" + GOOD, '[md] configures mode = "md" (MD at temperature); this run is mode = "ramp"'),
    ('[run]\nmode = "md"\n[md]\ntimestep = 10.0\n' + GOOD, "[md] timestep = 10 fs is too long for silicon"),
    ('[run]\nmode = "md"\n[md]\ntemperature = -5.0\n' + GOOD, "[md] temperature must be >= 0"),
    ('[run]\nmode = "md"\n[md]\nexchange_every = 0\n' + GOOD, "[md] exchange_every must be positive"),
    ('[run]\nmode = "md"\n[md]\nlayer = 11.0\n' + GOOD + "radius = 20.0\n",
     "[md] layer = 11 Å leaves region tip (radius 20 Å, boundary 8 Å) less than 2 Å of NVE interior"),
    ('[run]\nmode = "md"\n[md]\nthermostat = "nose"\n' + GOOD, "[md]: unknown key(s) ['thermostat']"),
])
def test_md_config_errors(text, message):
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert message in str(info.value), str(info.value)


def test_md_config_runs_for_the_duration_by_default():
    cfg = parse_config('[run]\nmode = "md"\n[md]\nduration = 5.0\ntimestep = 2.0\nexchange_every = 25\n' + GOOD)
    assert cfg.mode == "md" and cfg.max_increments == 101               # exchange 0 + 5 ps / 0.05 ps
    cfg = parse_config('[run]\nmode = "md"\nmax_increments = 7\n' + GOOD)
    assert cfg.max_increments == 7 and cfg.md["temperature"] == 300.0


def test_thermostat_holds_the_temperature_below_the_load_for_advance(tmp_path):
    """The Langevin layer's temperature, and the NVE core's after it equilibrated with the layer,
    match the set 300 K (LAMMPS' compute temp; 3n - 3 degrees of freedom) with the crack at rest."""
    from mpi4py import MPI
    from multiscale.atomistic.thermal import ThermalCrackRegion
    from multiscale.coupling.continuum import build_continuum
    from multiscale.reference.material import material
    mat = material("sw", MPI.COMM_SELF, None, log=lambda *a, **k: None)
    model = build_continuum("lefm", mat)
    region = ThermalCrackRegion({"potential": "sw", "radius": 25.0, "boundary": 8.0}, MPI.COMM_SELF, tmp_path,
                                log=lambda *a: None, material=mat, md={"temperature": 300.0, "exchange_every": 25})
    try:
        u = model.boundary_displacements(region.boundary_reference, model.k_g, np.zeros(2))
        first = region.advance(u, 0)
        v = region._velocities()[region.interior]
        kinetic = 0.5 * 28.0855 * MVV2E * np.sum(v ** 2)
        assert first["time"] == 0.0 and np.abs(v.sum(axis=0)).max() < 1e-10             # no net momentum
        assert 2 * kinetic / ((3 * len(v) - 3) * BOLTZMANN) == pytest.approx(600.0, rel=1e-9)   # 2 T at start
        rows = [region.advance(u, j) for j in range(1, 121)]                  # 3 ps at K_G
    finally:
        region.close()
    core = np.mean([r["temperature"] for r in rows[40:]])
    layer = np.mean([r["temperature_layer"] for r in rows[40:]])
    assert core == pytest.approx(300.0, rel=0.06) and layer == pytest.approx(300.0, rel=0.06), (core, layer)
    assert all(r["tip"][0] == rows[0]["tip"][0] for r in rows)               # no advance at K_G
    assert rows[-1]["time"] == pytest.approx(3.0) and rows[-1]["steps"] == 3000


# -- coupled runs under mpiexec -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """The whole R = 30 Å run: 1 continuum + 1 atomistic rank."""
    folder = tmp_path_factory.mktemp("md")
    proc = ok(launch(md_config(folder), 2))
    return folder, proc


@pytest.mark.mpi
def test_the_crack_runs_forward_once_running(running):
    folder, proc = running
    h = history(folder)["tip"]
    assert h["time"][0] == 0.0 and np.allclose(np.diff(h["time"]), 0.05)
    k = h["K_over_KG"]
    np.testing.assert_allclose(k, np.minimum(1.0 + 0.3 * h["time"], 2.6), rtol=1e-12)
    start = np.flatnonzero(h["tip_x"] > h["tip_x"][0] + 6.0)[0]              # two bond columns ahead
    assert 1.6 < k[start] < 2.6                                              # well above K_G: SW's trapping
    assert np.all(np.diff(h["tip_x"][start:]) >= 0), h["tip_x"][start:]      # monotone once running
    assert h["tip_x"][-1] > 12.0                                             # ran to the region's edge
    moved = np.flatnonzero(h["tip_x"] > h["tip_x"][0] + 1.0)[0]              # the first bond broke
    assert np.all(h["temperature"][5:moved] < 400)                           # 300 K before it ran
    assert np.nanmax(h["velocity"]) > 1000                                   # m/s while running
    out = folder / "run"
    for name in ("results.h5", "checkpoint.h5", "md.png", "run.log"):
        assert (out / name).is_file(), name
    assert "exc    1 | tip" in proc.stdout and "m/s" in proc.stdout


@pytest.mark.mpi
def test_region_on_two_ranks_and_one_rank_follow_the_same_trajectory(running, tmp_path):
    folder, _ = running
    ok(launch(md_config(tmp_path, "two", ranks=2), 3))
    ok(launch(md_config(tmp_path, "one"), 1))
    reference = history(folder)["tip"]
    one, two = history(tmp_path, "one")["tip"], history(tmp_path, "two")["tip"]
    for column in ("time", "K", "tip_x", "energy", "temperature"):
        np.testing.assert_array_equal(one[column], reference[column])       # same ranks for the region
    np.testing.assert_array_equal(two["tip_x"], reference["tip_x"])
    np.testing.assert_allclose(two["energy"], reference["energy"], rtol=0, atol=1e-7)      # measured 3.6e-9 eV
    np.testing.assert_allclose(two["temperature"], reference["temperature"], rtol=0, atol=1e-5)   # 1.3e-7 K


@pytest.mark.mpi
def test_restart_continues_the_trajectory_bit_for_bit(running, tmp_path):
    folder, _ = running
    ok(launch(md_config(tmp_path, "part", extra_run="max_increments = 40"), 2))
    assert len(history(tmp_path, "part")["tip"]["time"]) == 40
    proc = ok(launch(md_config(tmp_path, "part"), 2, "--restart"))
    assert "restarted from" in proc.stdout and "at increment 40" in proc.stdout
    reference, resumed = history(folder)["tip"], history(tmp_path, "part")["tip"]
    for column in ("time", "K", "tip_x", "energy", "temperature", "temperature_layer"):
        np.testing.assert_array_equal(resumed[column], reference[column], err_msg=column)


@pytest.mark.mpi
def test_md_restart_refuses_other_md_keys(running, tmp_path):
    import shutil
    folder, _ = running
    shutil.copytree(folder / "run", tmp_path / "run")
    config = md_config(tmp_path)
    config.write_text(config.read_text().replace("temperature = 300.0", "temperature = 500.0"))
    proc = launch(config, 2, "--restart")
    assert proc.returncode == 2
    assert "tip.md.temperature: checkpoint 300.0, configuration 500.0" in proc.stderr, proc.stderr


@pytest.mark.mpi
def test_md_injected_nan_ends_the_run_cleanly(tmp_path):
    proc = launch(md_config(tmp_path, extra="[debug]\ninject_nan_at = 3\n"), 2)
    assert proc.returncode == 1
    assert "region tip (group 1, world rank 1) failed at increment 3 (md)" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert list(history(tmp_path)["tip"]["increment"]) == [0, 1, 2]
