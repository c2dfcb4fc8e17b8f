"""The lattice-trapping curve's bookkeeping (multiscale.atomistic.trapping.TrappingCurve) and the
configuration of a mode = "trapping" run.  The continuation itself runs in test_flexible.py
(it shares that module's crack) and in benchmarks/trapping.py (whole curves, radius series,
the independent matscipy check)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from multiscale.atomistic.trapping import TrappingCurve
from multiscale.coupling.config import ConfigError, parse_config


def snake(n: int = 121, periods: float = 1.5, atoms: int = 6) -> TrappingCurve:
    """A curve shaped like a trapping snake: K/K_G = 1 + 0.3 sin(s), alpha = 3.3 s / 2 pi +
    0.4 sin(s); region I a chain of bonded atoms whose first bond breaks halfway."""
    s = np.linspace(0.0, periods * 2 * math.pi, n)
    alpha = 3.3 * s / (2 * math.pi) + 0.4 * np.sin(s)
    K = 60.0 * (1.0 + 0.3 * np.sin(s))
    positions = np.zeros((n, atoms, 3))
    positions[:, :, 0] = 2.35 * np.arange(atoms)       # a chain of bonds (k, k + 1)
    positions[n // 2:, 0, 0] -= 2.0     # atoms 0 and 1 are 2.35 Å apart until halfway, then 4.35 Å
    zeros = np.zeros(n)
    return TrappingCurve(alpha, K, zeros, zeros, zeros, np.ones(n, int), positions, K_G=60.0, radius=20.0,
                         neighbour=2.35)


def test_folds_are_the_extreme_turning_points():
    curve = snake()
    minima, maxima = curve.turning_points()
    assert len(maxima) == 2 and len(minima) == 1       # 1.5 periods from a rising start
    assert curve.K_plus == pytest.approx(78.0, rel=1e-3) and curve.K_minus == pytest.approx(42.0, rel=1e-3)
    assert curve.K[maxima[0]] == curve.K_plus
    # the corrector's tolerance makes K wobble where it is flat: no extra folds from that
    wobbly = snake()
    wobbly.K = wobbly.K + 1e-5 * wobbly.K_G * np.cos(np.arange(len(wobbly.K)) * 2.0)
    assert [len(t) for t in wobbly.turning_points()] == [1, 2]


def test_a_forward_leg_counts_the_folds_it_has_passed():
    """trace(forward_folds=1) ends the forward leg once K has moved PAST_FOLD x K_G past its
    first fold (just past K-): a fold is counted only then, the corrector's wobble is none."""
    from multiscale.atomistic.trapping import PAST_FOLD, _folds_passed, trace

    K = snake().K                               # rises to K+ at point 20, falls to K- at 60, ...
    h = PAST_FOLD * 60.0
    assert _folds_passed(K[:20], h) == 0
    first = next(i for i in range(len(K)) if _folds_passed(K[:i + 1], h) == 1)
    assert 20 < first and K[20] - K[first] > h and K[20] - K[first - 1] <= h
    assert _folds_passed(K, h) == 3
    assert _folds_passed(K[:19] + 1e-5 * 60.0 * np.cos(np.arange(19) * 2.0), h) == 0
    with pytest.raises(ValueError, match="forward_folds must be a positive count"):
        trace(None, forward_folds=0)


def test_a_curve_without_a_fold_says_to_trace_further():
    curve = snake(n=30, periods=0.2)
    with pytest.raises(ValueError, match=r"has no K\+ \(a maximum above K_G\) yet: trace it further"):
        curve.K_plus
    with pytest.raises(ValueError, match=r"no K- \(a minimum below K_G\)"):
        curve.K_minus


def test_a_fold_pair_above_K_G_is_not_the_bands_lower_end(tmp_path):
    """A backward leg that stopped short of K- (si-ani's) leaves only a small fold pair inside
    the band traced: its minimum lies above K_G and is not K-."""
    K_G = 60.0
    K = np.r_[np.linspace(0.93, 1.5, 40), np.linspace(1.5, 1.48, 5)[1:], np.linspace(1.48, 1.7, 20)[1:],
              np.linspace(1.7, 1.3, 20)[1:]] * K_G
    n = len(K)
    curve = TrappingCurve(np.linspace(0.0, 1.5, n), K, *(np.zeros(n),) * 3, np.ones(n, int), np.zeros((n, 2, 3)),
                          K_G=K_G, radius=20.0, neighbour=2.35, stopped="backward: no step converged")
    assert [len(t) for t in curve.turning_points()] == [1, 2]
    assert curve.K_plus == pytest.approx(1.7 * K_G)
    with pytest.raises(ValueError, match=r"no K- \(a minimum below K_G\).*it stopped: backward: no step converged"):
        curve.K_minus
    curve.plot(tmp_path / "pair.png")                      # K+ marked, no K- line, no error
    assert (tmp_path / "pair.png").stat().st_size > 10_000


def test_bond_changes_name_the_pairs():
    curve = snake()
    broken, formed = curve.bond_changes(0, len(curve.K) - 1)
    assert (0, 1) in broken and formed == []
    assert curve.bond_changes(0, 10) == ([], [])
    assert any("1 bond(s) broken: 0-1 at (" in line and "0 formed" in line for line in curve.events())


def test_write_and_read_back(tmp_path):
    h5py = pytest.importorskip("h5py")
    curve = snake()
    curve.past = {"K_plus": "at 1.3030 K_G the tip advances 3.3 Å"}
    with h5py.File(tmp_path / "t.h5", "w") as f:
        curve.write(f.create_group("trapping"))
    with h5py.File(tmp_path / "t.h5", "r") as f:
        g = f["trapping"]
        assert g.attrs["K_plus"] == pytest.approx(curve.K_plus) and g.attrs["K_G"] == 60.0
        back = TrappingCurve.read(g)
    np.testing.assert_array_equal(back.positions, curve.positions)
    assert back.K_minus == curve.K_minus and back.stopped == "" and back.past == curve.past
    # a curve without folds is written with NaN folds, not refused (a killed run keeps its points)
    with h5py.File(tmp_path / "short.h5", "w") as f:
        snake(n=20, periods=0.1).write(f.create_group("trapping"))
        assert math.isnan(f["trapping"].attrs["K_plus"])


def test_plot_marks_the_folds(tmp_path, monkeypatch):
    from matplotlib.figure import Figure
    legends, save = [], Figure.savefig

    def saved(fig, path, **kwargs):
        legends.append([t.get_text() for t in fig.axes[0].get_legend().get_texts()])
        save(fig, path, **kwargs)
    monkeypatch.setattr(Figure, "savefig", saved)
    curve = snake()
    curve.plot(tmp_path / "t.png", {"other": snake(periods=1.2)})
    snake(n=20, periods=0.1).plot(tmp_path / "short.png")      # no folds: no fold lines, no error
    assert (tmp_path / "t.png").stat().st_size > 10_000 and (tmp_path / "short.png").is_file()
    assert any(t.startswith("K- = ") for t in legends[0]) and any(t.startswith("K+ = ") for t in legends[0])
    assert not any(t.startswith(("K- ", "K+ ")) for t in legends[1])
    # a fold found elsewhere (a branch at fixed K) replaces the curve's own
    curve.plot(tmp_path / "m.png", marks={"K+ = 1.234 K_G (at fixed K)": 1.234}, folds=("K-",))
    assert [t for t in legends[2] if t.startswith("K+")] == ["K+ = 1.234 K_G (at fixed K)"]
    assert sum(t.startswith("K- = ") for t in legends[2]) == 1


def test_a_backward_leg_joined_to_its_forward_leg_is_the_whole_curve():
    """benchmarks/trapping.py --forward: a curve's legs traced as two processes from the same
    start (the backward one ending there, the forward one starting there) join into the curve
    traced at once, with its folds; a forward leg from another start is refused."""
    import dataclasses
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("trapping_benchmark",
                                                  Path(__file__).resolve().parent.parent / "benchmarks" / "trapping.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    whole, start = snake(), 40
    names = ("alpha", "K", "energy", "max_force_free", "max_force_boundary", "evaluations", "positions")
    back = dataclasses.replace(whole, **{n: getattr(whole, n)[:start + 1] for n in names})
    forward = dataclasses.replace(whole, **{n: getattr(whole, n)[start:] for n in names}, stopped="running")
    joined = bench.with_forward_leg(back, forward)
    for n in names:
        np.testing.assert_array_equal(getattr(joined, n), getattr(whole, n))
    assert joined.K_plus == whole.K_plus == pytest.approx(78.0, rel=1e-3) and joined.K_minus == whole.K_minus
    assert joined.stopped == f"forward (--forward): the kept points of an interrupted run, to alpha = {whole.alpha[-1]:+.3f} Å"
    elsewhere = dataclasses.replace(forward, alpha=forward.alpha + 1e-6)
    with pytest.raises(SystemExit, match="is not this trace's start"):
        bench.with_forward_leg(back, elsewhere)


BASE = """
[run]
mode = "trapping"
{extra_run}
[[region]]
name = "sw"
potential = "sw"
radius = 20.0
{extra}
"""


def config(extra: str = "", extra_run: str = ""):
    return parse_config(BASE.format(extra=extra, extra_run=extra_run))


def test_trapping_mode_takes_defaults_and_checks_its_keys():
    c = config()
    assert c.mode == "trapping" and c.trapping["length"] == 4.0 and c.trapping["fmax"] == 1e-5
    assert c.trapping["tip_weight"] == 20.0 and c.trapping["outer"] == 80.0
    assert config("[trapping]\nouter = 0.0").trapping["outer"] == 0.0      # the shell on the K-field
    with pytest.raises(ConfigError, match=r"outer = 30 Å must exceed region sw's region III by three cutoffs "
                                          r"\(43.1 Å: radius 20 \+ far 8 \+ 4 x 3.77\); raise outer, or set 0"):
        config("[trapping]\nouter = 30.0")
    assert config("[trapping]\nlength = 7.0\nds = 0.1").trapping["length"] == 7.0
    with pytest.raises(ConfigError, match=r"\[trapping\]: unknown key\(s\) \['step'\]"):
        config("[trapping]\nstep = 0.1")
    with pytest.raises(ConfigError, match=r"\[trapping\] ds must be positive"):
        config("[trapping]\nds = -0.1")
    with pytest.raises(ConfigError, match=r"ds_max = 0.1 is below ds = 0.2; raise ds_max"):
        config("[trapping]\nds = 0.2")
    with pytest.raises(ConfigError, match=r"mode must be one of \['ramp', 'trapping', 'md'\], got 'flexible'"):
        parse_config(BASE.format(extra="", extra_run="").replace('"trapping"', '"flexible"'))
    with pytest.raises(ConfigError, match=r'needs continuum = "lefm", got \'fem\''):
        config(extra_run='continuum = "fem"')
    with pytest.raises(ConfigError, match=r'\[trapping\] configures mode = "trapping".*remove \[trapping\]'):
        parse_config(BASE.format(extra="[trapping]\nlength = 3.0", extra_run="").replace('mode = "trapping"', ""))


# -- a mode = "trapping" run under mpiexec (a short stretch of the curve; whole curves:
#    benchmarks/trapping.py) ------------------------------------------------------------------
RUN = """
[run]
output = "{output}"
mode = "trapping"
timeout = 600
[trapping]
length = 0.3
back = 0.15
outer = 50.0
[[region]]
name = "sw"
potential = "sw"
radius = 20.0
ranks = {ranks}
"""


@pytest.mark.mpi
def test_trapping_run_on_one_and_on_two_ranks(tmp_path):
    """The run writes the curve with K_G into results.h5 (the folds need a longer trace: NaN
    here) and trapping.png; a region group of 2 ranks (LAMMPS splitting the cluster, both ranks
    running the solver in step) beside the continuum's rank traces the curve of one rank
    running everything."""
    h5py = pytest.importorskip("h5py")
    from test_coupling import launch, ok
    curves = {}
    for name, ranks, world in (("one", 1, 1), ("group", 2, 3)):
        path = tmp_path / f"{name}.toml"
        path.write_text(RUN.format(output=tmp_path / name, ranks=ranks))
        proc = ok(launch(path, world, timeout=600))
        assert "K_minus and K_plus not reached between alpha" in proc.stdout   # too short for a fold: said
        with h5py.File(tmp_path / name / "results.h5", "r") as f:
            g = f["regions/sw"]
            assert g.attrs["K_G"] == pytest.approx(61.53, rel=1e-3) and math.isnan(g.attrs["K_plus"])
            curves[name] = TrappingCurve.read(g["trapping"])
        assert (tmp_path / name / "trapping.png").is_file()
        assert (tmp_path / name / "sw" / "trapping_partial.h5").is_file()
    one, two = curves["one"], curves["group"]
    assert len(one.K) >= 5 and one.max_force_free.max() <= 2e-5      # fmax 1e-5 per component
    assert one.max_force_boundary.max() <= 2e-5        # the shell moves by the lattice Green's function
    assert one.shell is not None and one.shell.shape[:2] == (len(one.K), 521)   # regions II-IV, for past_fold
    start = int(np.argmin(np.abs(one.K - one.K_G)))               # the K_G equilibrium, mid-curve
    assert one.K[start] == pytest.approx(one.K_G, rel=1e-12) and 0 < start < len(one.K) - 1
    assert one.alpha[-1] - one.alpha[start] >= 0.3 and one.alpha[start] - one.alpha[0] >= 0.15
    assert np.all(np.diff(one.alpha) > 0) and np.all(np.diff(one.K) < 0)   # the unstable branch at R = 20 Å
    # the Cauchy-Born fit's strain samples are seeded (flexible._seeded_latin_hypercube): both
    # runs build the same field and trace the same curve, point for point.  LAMMPS' forces on
    # 2 ranks differ in the last bits, so each corrector stops elsewhere within its tolerance:
    # fmax 1e-5 eV/Å on 20 x the tip force, which moves by ~0.005 eV/Å per Å, leaves alpha free
    # by ~1e-4 Å, and K follows the curve's slope (~35 GPa sqrt(Å) per Å here): measured 1.1e-4 Å
    # and 3.5e-5 relative.  (On the K-field, without the Green's function: 2.5e-8 Å, 2e-8.)
    assert len(two.K) == len(one.K)
    np.testing.assert_allclose(two.alpha, one.alpha, atol=3e-4)
    np.testing.assert_allclose(two.K, one.K, rtol=2e-4)
    assert two.K[start] == pytest.approx(one.K_G, rel=1e-12)


def test_past_fold_summary_separates_the_crack_plane_from_a_reconstruction():
    from multiscale.atomistic.trapping import describe_past
    reconstructed = {"K": 61.0 * 1.01, "steps": 259, "converged": True,
                     "broken": [(0, 1, 2.7, -0.2), (1, 2, 4.4, -0.1), (3, 8, -0.1, 3.8)], "formed": [(0, 3, 0.4, 1.7)]}
    line = describe_past(reconstructed, 61.0)
    assert line.startswith("at 1.0100 K_G, tip held (FIRE 259 steps): 2 crack-plane bonds broken, 0 formed")
    assert line.endswith("; off the plane 1 broken at (-0.1, +3.8), 1 formed at (+0.4, +1.7) (Å from the tip)")
    healed = {**reconstructed, "converged": False, "broken": [], "formed": [(1, 4, -2.1, 0.2)]}
    assert "not converged): 0 crack-plane bonds broken, 1 formed" in describe_past(healed, 61.0)
    assert describe_past({**reconstructed, "broken": [], "formed": []}, 61.0).endswith("(no bond changed)")


def test_the_preconditioner_is_refreshed_once_its_extra_force_calls_cost_a_refresh():
    """Ageing: the calls beyond the first corrector's after a refresh, in seconds, against the
    refresh's own time (10 s here, 0.1 s a call)."""
    from multiscale.atomistic.preconditioner import Ageing
    age = Ageing(10.0)
    assert not age.after(20, 2.0)                  # the baseline: 20 calls
    assert not age.after(20, 2.0) and age.excess == 0.0
    assert not age.after(70, 7.0)                  # 50 extra calls: 5 s
    assert not age.after(60, 6.0)                  # 40 more: 9 s
    assert age.after(40, 4.0)                      # 20 more: 11 s > 10 s
    assert not Ageing(10.0).after(0, 0.0)
