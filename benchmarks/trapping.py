"""Lattice-trapping curves under flexible boundaries (multiscale.atomistic.trapping): K- and K+
against the region's radius, an independent check, and what a continuation step costs.

For each radius: the whole curve through the flexible equilibrium at K_G, ``--length`` Å of tip
advance and ``--back`` Å back from it (LAMMPS forces, one rank), its folds K-/K_G and K+/K_G, points, force calls and seconds;
the cost of a continuation step against one fixed-boundary relaxation (region I relaxed at K_G
with the tip held, matscipy's Newton-Krylov, same radius and forces).

``--check``: instead, an independent run at the first radius, on the curve traced there
before.  matscipy's own flexible solve (``SinclairCrack.optimize``, alpha free, K fixed, the
shell on the K-field) with forces from no LAMMPS: matscipy's own Stillinger-Weber calculator
(``Manybody``) for sw, the model's ASE calculator (PyTorch) for a model; started from the curve's
state 3 % of K_G short of each fold (K+ the highest maximum, K- the lowest minimum; the end of a
branch followed at fixed K where there is one, below) and ramped
towards it in steps of 1 % K_G, halved on every failure down to 0.125 %: the last K with an
equilibrium on that branch (alpha within 0.3 Å) brackets the fold without continuation.
``--matscipy-precon``: matscipy's own preconditioner in those solves (ASE's ``Exp`` on regions
I and II, alpha's column by finite differences: SW's first step past its start took 54 force
calls with it, 97 without), for a model whose force calls cost a second.

``--lower-end``: instead, where a saved curve's backward leg stalled short of K- (a kink of a
C1 model's forces: si-ani on the glide crack of earlier versions), the branch followed at
fixed K from the leg's last point (``trapping.branch_end``: Newton, else FIRE) down to where
it ends, with what region I does
1 % below; the equilibria followed go to <stem>_branch.h5 as they come (a killed run goes on
from the last one) and into the figure.  ``--upper-end``: the same towards K+ from the curve's
equilibrium at K_G (<stem>_branch_up.h5), where a curve stopped at kinks on both sides (si-ani's
glide crack with the shell on the K-field); ``--check`` then brackets the end of that branch.

``--forward FILE`` with ``--length 0``: the two legs of one curve on two cores, or the backward
leg after a run stopped by hand in its forward leg: this run traces the backward leg and joins
the forward leg kept in FILE (a ``<stem>.running.h5`` copied aside, or the ``<stem>.h5`` of a
run with ``--back 0`` beside it: FILE is read once the backward leg is done, waiting for it to
be written if it is missing or older than this run; it must start from the same equilibrium,
which the seeded setup reproduces).  The backward leg keeps its points in
``<stem>.backward.running.h5``.  ``--forward-folds 1`` ends the forward leg 1 % of K_G past K-
(instead of after ``--length`` Å, up the steep branch), so that both legs run unattended.

``--model-error``: instead, a model's forces against native SW's (both without LAMMPS) on region
I along its saved curve and branches: where the model's band departs from SW's.

Curves go to benchmarks/results/trapping/<potential>_R<radius>.h5, figures to
docs/figures/trapping_<potential>.png, figures and timings to benchmarks/results/trapping.json
(updated, not replaced: radii can be run one at a time).

    .venv/bin/python benchmarks/trapping.py [--potential sw] [--radii 20 30 40] [--length 4.0]
    .venv/bin/python benchmarks/trapping.py --outer 80 --radii 20 30   # Green's function boundary
    .venv/bin/python benchmarks/trapping.py --check --radii 30
    .venv/bin/python benchmarks/trapping.py --figure          # redraw from the saved curves
    .venv/bin/python benchmarks/trapping.py --past --radii 20 30 40   # redo past the folds
    .venv/bin/python benchmarks/trapping.py --lower-end --potential si-ani --outer 80 --radii 20
    .venv/bin/python benchmarks/trapping.py --upper-end --potential si-ani --radii 20
    .venv/bin/python benchmarks/trapping.py --check --potential si-ani --radii 20
    .venv/bin/python benchmarks/trapping.py --model-error --potential si-ani --outer 80 --radii 20
    .venv/bin/python benchmarks/trapping.py --potential si-ani --outer 100 --radii 60 --length 0 --forward FILE
    .venv/bin/python benchmarks/trapping.py --potential si-attention --ase --outer 100 --radii 20
    .venv/bin/python benchmarks/trapping.py --potential si-attention --ase --radii 15 --back 0 --forward-folds 1 &
    .venv/bin/python benchmarks/trapping.py --potential si-attention --ase --radii 15 --length 0 \
        --forward benchmarks/results/trapping/si-attention_R15.h5
    .venv/bin/python benchmarks/trapping.py --check --matscipy-precon --potential si-attention --radii 15
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "trapping.json"
CURVES = HERE / "results" / "trapping"
FIGURES = HERE.parent / "docs" / "figures"


def fixed_relaxation_seconds(crack) -> float | None:
    """One region-I relaxation at K_G with the tip held (the fixed-boundary baseline), s; None
    where Newton-Krylov finds none in the first equilibrium's FIXED_STEPS (si-ani's glide crack from 30 Å)."""
    from multiscale.atomistic.trapping import FIXED_STEPS
    start = time.perf_counter()
    try:
        crack.solve(crack.K_G, alpha=0.0, flexible=False, fmax=1e-4, steps=FIXED_STEPS)
    except RuntimeError as exc:
        print(f"no fixed-boundary baseline: {exc}", flush=True)
        return None
    return time.perf_counter() - start


def fold(curve, name: str) -> float | None:
    """K_minus or K_plus over K_G; None where the trace has no such fold."""
    try:
        return getattr(curve, name) / curve.K_G
    except ValueError:
        return None


def stem(potential: str, radius: float, outer: float) -> str:
    """The saved curve's name: <potential>_R<radius>, with _G<outer> for a Green's function boundary."""
    return f"{potential}_R{radius:g}" + (f"_G{outer:g}" if outer else "")


def key(potential: str, radius: float, outer: float) -> str:
    return f"{potential} R={radius:g}" + (f" outer={outer:g}" if outer else "")


def with_forward_leg(curve, forward):
    """``curve`` (a trace run with ``--length 0``: its backward leg, then the start) followed by
    ``forward`` (the kept points of a run from the same start, ``--forward``): one curve, the
    legs traced as two processes."""
    import dataclasses
    if not (np.allclose([forward.alpha[0], forward.K[0]], [curve.alpha[-1], curve.K[-1]], rtol=0, atol=1e-9)
            and forward.radius == curve.radius and forward.K_G == curve.K_G):
        sys.exit(f"--forward: its first point (alpha {forward.alpha[0]:+.6f} Å, K {forward.K[0]:.6f}) is not this "
                 f"trace's start (alpha {curve.alpha[-1]:+.6f} Å, K {curve.K[-1]:.6f}): trace both from the same "
                 "potential, radius and outer")
    leg = (f"the kept points of an interrupted run, to alpha = {forward.alpha[-1]:+.3f} Å"
           if forward.stopped == "running" else forward.stopped or "ran its length, or past its folds (--forward-folds)")
    stopped = "; ".join(part for part in (curve.stopped, f"forward (--forward): {leg}") if part)
    return dataclasses.replace(joined(curve, forward), stopped=stopped, past={})


def forward_leg(path: Path, begun: float, poll: float = 30.0):
    """The forward leg in ``path``, once it is there and written after ``begun`` (time.time())
    or is a kept ``.running.h5`` copied aside (a run on the other core writes it when done)."""
    said = False
    while not (path.is_file() and (path.stat().st_mtime > begun or ".running" in path.name)):
        if not said:
            print(f"--forward: waiting for {path} (the forward leg's run writes it when done)", flush=True)
            said = True
        time.sleep(poll)
    return read_curve(path)


def run_radius(potential: str, radius: float, length: float, back: float, outer: float = 0.0,
               forward=None, ase: bool = False, precondition: bool = True,
               forward_folds: int | None = None) -> tuple[dict, object]:
    """The row of one radius (module doc); ``forward``: a TrappingCurve of the forward leg traced
    before, or the path of its file, read once this run's leg is done (waiting for it to be
    written; with ``length`` 0 this run traces the backward leg and joins the two: points, force
    calls and folds are the joined curve's, seconds and seconds per step this run's); ``ase``:
    forces from the model's ASE calculator instead of LAMMPS; ``precondition``, ``forward_folds``:
    trace's.  A forward leg alone (``back`` 0, to be joined by a run beside it) skips what happens
    past its folds: the joined run does that."""
    import h5py

    from multiscale.atomistic.flexible import FlexibleCrack
    from multiscale.atomistic.trapping import past_folds, trace

    crack = FlexibleCrack(potential, radius=radius, calculator=independent_calculator(potential) if ase else None)
    try:
        fixed = fixed_relaxation_seconds(crack)
        start = time.perf_counter()
        CURVES.mkdir(parents=True, exist_ok=True)
        running = CURVES / (stem(potential, radius, outer) + (".backward" if forward is not None else "")
                            + ".running.h5")
        begun = time.time()
        curve = trace(crack, length=length, back=back, outer=outer or None, precondition=precondition,
                      keep=running, forward_folds=forward_folds)
        seconds = time.perf_counter() - start
        steps = len(curve.K) - 1                      # this run's (seconds are this run's too)
        if isinstance(forward, Path):
            forward = forward_leg(forward, begun)
        if forward is not None:
            curve = with_forward_leg(curve, forward)
        alone = back == 0 and forward is None
        beyond = {} if alone else {f"past_{name}": line for name, line in past_folds(crack, curve).items()}
    finally:
        crack.close()
    CURVES.mkdir(parents=True, exist_ok=True)
    with h5py.File(CURVES / f"{stem(potential, radius, outer)}.h5", "w") as f:
        curve.write(f.create_group("trapping"))
    running.unlink(missing_ok=True)
    row = {"potential": potential, "radius": radius, "outer": outer or None, "free_atoms": int(curve.positions.shape[1]),
           "forces": "ASE" if ase else "LAMMPS", "preconditioned": bool(precondition),
           "K_G": curve.K_G, "K_minus_over_KG": fold(curve, "K_minus"), "K_plus_over_KG": fold(curve, "K_plus"),
           "folds": {kind: [[float(curve.alpha[i]), float(curve.K[i] / curve.K_G)] for i in index]
                     for kind, index in zip(("minima", "maxima"), curve.turning_points())},
           "points": len(curve.K), "force_calls": int(curve.evaluations.sum()), "seconds": seconds,
           "seconds_per_step": seconds / steps, "fixed_relaxation_seconds": fixed,
           "step_over_fixed_relaxation": seconds / steps / fixed if fixed else None, "events": curve.events(),
           "max_force_free": float(curve.max_force_free.max()),
           "max_force_boundary_median": float(np.median(curve.max_force_boundary)),
           "max_force_boundary_max": float(curve.max_force_boundary.max()), "stopped": curve.stopped,
           **beyond, **({"forward_points": len(forward.K)} if forward is not None else {})}
    print(json.dumps({k: v for k, v in row.items() if k != "events"}, indent=1), flush=True)
    return row, curve


def independent_calculator(potential: str):
    """Forces without LAMMPS: matscipy's Stillinger-Weber for sw, the model's ASE calculator."""
    if potential == "sw":
        from matscipy.calculators.manybody import Manybody
        from matscipy.calculators.manybody.explicit_forms.stillinger_weber import (
            StillingerWeber, Stillinger_Weber_PRB_31_5262_Si)
        return Manybody(**StillingerWeber(Stillinger_Weber_PRB_31_5262_Si))
    from multiscale.engines.ase_calculator import MultiscaleCalculator
    return MultiscaleCalculator(potential)


def independent_check(potential: str, radius: float, curve, names=("K_plus", "K_minus"), branches=None,
                      precon: bool = False) -> dict:
    """K+ and K- bracketed by matscipy's flexible solves at fixed K, forces without LAMMPS
    (module doc); where a branch was followed at fixed K towards a fold (``branches``: name ->
    that TrappingCurve, ``--lower-end``/``--upper-end``: the trace stopped at kinks short of
    it), the end of that branch instead of the curve's fold.  ``precon``: matscipy's own
    preconditioner in its Newton-Krylov (ASE's ``Exp`` on regions I and II, alpha's column by
    finite differences; nothing of ours)."""
    from multiscale.atomistic.flexible import FlexibleCrack, _matscipy_quietly

    crack = FlexibleCrack(potential, radius=radius, calculator=independent_calculator(potential))
    curves, folds = {}, {}
    for name, which in (("K_plus", 1), ("K_minus", 0)):
        if name in (branches or {}):
            # followed at fixed K where the trace stopped at kinks: the branch's last equilibrium
            curves[name], folds[name] = branches[name], len(branches[name].K) - 1
            continue
        curves[name] = curve
        try:
            folds[name] = curve.fold_index(which)
        except ValueError:
            # a backward leg that stopped before turning (si-ani): its end is the lowest K
            # traced on the start's branch, and the bracket from there is where that branch ends
            folds[name] = 0
    sc = crack._sinclair(crack.K_G, 0.0, variable_alpha=True)
    calls, forces = [0], sc.get_forces

    def counted(*args, **kwargs):
        calls[0] += 1          # the residuals' and the preconditioner's alpha column alike
        return forces(*args, **kwargs)
    sc.get_forces = counted

    def solve(K: float, state, branch: bool = True) -> bool:
        sc.u[:], sc.alpha, sc.kI = state[0], state[1], K
        try:
            with _matscipy_quietly():
                sc.update_atoms()
                sc.optimize(ftol=1e-5, steps=30, method="krylov", precon=precon)
        except RuntimeError:
            return False
        # still on the branch it started on (not checked from the curve's state: with a Green's
        # function boundary the curve's alpha lies up to 0.26 Å from the field-shell one's)
        return not branch or abs(sc.alpha - state[1]) < 0.3

    out = {}
    for name, fold in ((name, folds[name]) for name in names):
        curve, calls[0], begun = curves[name], 0, time.perf_counter()
        sign = 1.0 if name == "K_plus" else -1.0
        # the curve's point 3 % of K_G short of the fold on its approach (stable) side
        j, by = fold, (-1 if fold > 0 else 1)      # behind the fold, or ahead of the curve's end
        while 0 < j + by < len(curve.K) and sign * (curve.K[fold] - curve.K[j + by]) >= 0 \
                and sign * (curve.K[fold] - curve.K[j]) < 0.03 * curve.K_G:
            j += by
        sc.alpha, sc.kI = float(curve.alpha[j]), float(curve.K[j])
        sc.u[:] = 0.0
        with _matscipy_quietly():
            sc.update_atoms()
        u0 = curve.positions[j] - sc.atoms.positions[sc.regionI]
        assert solve(float(curve.K[j]), (u0, float(curve.alpha[j])), branch=False), \
            f"no equilibrium at the curve's point {j}"
        good_K, good = float(curve.K[j]), (sc.u.copy(), float(sc.alpha))
        print(f"independent {name}: matscipy's equilibrium at {good_K / crack.K_G:.4f} K_G has alpha "
              f"{good[1]:+.4f} Å (ours {curve.alpha[j]:+.4f})", flush=True)
        out[f"{name}_start"] = [good_K / crack.K_G, good[1], float(curve.alpha[j])]
        step = 0.01 * crack.K_G
        while step >= 0.00125 * crack.K_G - 1e-12:
            K = good_K + sign * step
            if solve(K, good):
                good_K, good = K, (sc.u.copy(), float(sc.alpha))
            else:
                step /= 2
            print(f"  {name}: K = {K / crack.K_G:.4f} K_G {'ok' if good_K == K else 'no equilibrium'}", flush=True)
        out[f"{name}_over_KG_bracket"] = sorted([good_K / crack.K_G, (good_K + sign * 2 * step) / crack.K_G])
        ours = float(curve.K[fold] / curve.K_G)
        mid = sum(out[f"{name}_over_KG_bracket"]) / 2
        out[f"{name}_over_KG_ours"] = ours
        out[f"{name}_relative_difference"] = abs(ours - mid) / mid
        out[f"force_calls_{name}"], out[f"seconds_{name}"] = calls[0], time.perf_counter() - begun
    out["matscipy_precon"] = precon
    print(json.dumps(out, indent=1), flush=True)
    return out


def update_json(path: Path, update) -> None:
    """Read ``path`` now, apply ``update`` to its dict, write it back (runs for other radii may
    write it in between)."""
    results = json.loads(path.read_text()) if path.is_file() else {}
    results.update({"what": __doc__.splitlines()[0], "cpu": platform.processor() or platform.machine()})
    update(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n")


def read_curve(path: Path):
    import h5py

    from multiscale.atomistic.trapping import TrappingCurve
    with h5py.File(path, "r") as f:
        return TrappingCurve.read(f["trapping"])


def past_saved(potential: str, radius: float, outer: float = 0.0) -> dict:
    """``past_folds`` on the saved curve at this radius (rewritten with its ``past`` lines)."""
    import h5py

    from multiscale.atomistic.flexible import FlexibleCrack
    from multiscale.atomistic.trapping import past_folds
    path = CURVES / f"{stem(potential, radius, outer)}.h5"
    curve = read_curve(path)
    crack = FlexibleCrack(potential, radius=radius)
    try:
        past = {f"past_{name}": line for name, line in past_folds(crack, curve).items()}
    finally:
        crack.close()
    with h5py.File(path, "w") as f:
        curve.write(f.create_group("trapping"))
    return past


def branch_path(potential: str, radius: float, outer: float, name: str = "K_minus") -> Path:
    """Where the equilibria followed at fixed K towards ``name`` are kept."""
    return CURVES / (f"{stem(potential, radius, outer)}_branch" + ("_up" if name == "K_plus" else "") + ".h5")


def branch_start(curve, name: str) -> int:
    """The saved curve's point a fixed-K branch starts from: for K- the backward leg's end
    (index 0), for K+ the flexible equilibrium at K_G the trace started from."""
    if name == "K_minus":
        return 0
    return int(np.argmin(np.abs(curve.K - curve.K_G)))


def branch_end_at_fixed_K(potential: str, radius: float, outer: float = 0.0, name: str = "K_minus") -> dict:
    """Where a saved curve's branch ends towards ``name`` at fixed K: for K-, from where the
    backward leg stopped short of it (a kink it could not pass); for K+, from K_G (a field-shell
    si-ani curve stops at kinks on both sides).  The end is bracketed by flexible solves at
    fixed K (``trapping.branch_end``: Newton, else FIRE), in K_G, with the seconds it took and
    what region I does 1 % beyond the bracket from the branch's last equilibrium
    (``trapping.past_fold``, tip held).  The equilibria followed go to ``branch_path`` as they
    come; a run that finds that file goes on from its last equilibrium."""
    from multiscale.atomistic.flexible import FlexibleCrack
    from multiscale.atomistic.trapping import _keep, branch_end, describe_past, past_fold
    curve = read_curve(CURVES / f"{stem(potential, radius, outer)}.h5")
    path = branch_path(potential, radius, outer, name)
    sign = 1.0 if name == "K_plus" else -1.0
    prior = read_curve(path) if path.is_file() else None
    origin = branch_start(curve, name)
    start_curve, index = (prior, len(prior.K) - 1) if prior is not None else (curve, origin)
    crack = FlexibleCrack(potential, radius=radius)
    start = time.perf_counter()
    try:
        good, bad, branch = branch_end(crack, start_curve, index, sign, outer=outer or None,
                                       keep=lambda b: _keep(path, joined(prior, b)))
        seconds = time.perf_counter() - start
        branch = joined(prior, branch)
        _keep(path, branch)
        last = len(branch.K) - 1
        past = describe_past(past_fold(crack, branch, last, (1 + 0.01 * sign) * bad / float(branch.K[last])),
                             curve.K_G)
    finally:
        crack.close()
    out = {f"{name}_bracket_over_KG": sorted([bad / curve.K_G, good / curve.K_G]),
           f"{name}_bracket_from": [float(curve.alpha[origin]), float(curve.K[origin] / curve.K_G)],
           f"{name}_bracket_alpha": float(branch.alpha[-1]),
           f"{name}_bracket_seconds": seconds, f"{name}_bracket_resumed": prior is not None,
           f"{name}_bracket_points": len(branch.K), f"{name}_bracket_force_calls": int(branch.evaluations.sum()),
           f"past_{name}_bracket": past}
    print(json.dumps(out), flush=True)
    return out


def model_error(potential: str, radius: float, outer: float = 0.0, every: int = 4) -> dict:
    """How far a model's forces are from native SW's on its own equilibria: every ``every``-th
    point of the saved curve and of its ``--lower-end`` and ``--upper-end`` branches, region
    I's forces from matscipy's SW and from the model's ASE calculator (no LAMMPS) on the whole
    cluster; per point K/K_G, alpha (Å), the RMS and largest difference (eV/Å) and where the
    largest lies from the tip (Å, in the crack's x, y)."""
    from multiscale.atomistic.flexible import FlexibleCrack, _matscipy_quietly
    crack = FlexibleCrack(potential, radius=radius)
    try:
        sc = crack._sinclair(crack.K_G, 0.0, variable_alpha=True)
        inner = sc.regionI
        tip = sc.cryst.cell.diagonal()[:2] / 2.0
        calculators = independent_calculator("sw"), independent_calculator(potential)
        out = {}
        paths = {"curve": CURVES / f"{stem(potential, radius, outer)}.h5",
                 "branch": branch_path(potential, radius, outer),
                 "branch_up": branch_path(potential, radius, outer, "K_plus")}
        for name, path in paths.items():
            if not path.is_file():
                continue
            curve, rows = read_curve(path), []
            for i in sorted({*range(0, len(curve.K), every), len(curve.K) - 1}):
                sc.u[:], sc.alpha, sc.kI = 0.0, float(curve.alpha[i]), float(curve.K[i])
                with _matscipy_quietly():
                    sc.update_atoms()        # the shell on the field (K-field curves)
                atoms = sc.atoms.copy()
                atoms.positions[inner] = curve.positions[i]
                if curve.shell is not None:
                    atoms.positions[~inner] = curve.shell[i]
                sw, model = (calculator.get_forces(atoms.copy()) for calculator in calculators)
                error = np.linalg.norm(sw[inner] - model[inner], axis=1)
                worst = atoms.positions[inner][np.argmax(error), :2] - tip - [curve.alpha[i], 0.0]
                rows.append([float(curve.K[i] / curve.K_G), float(curve.alpha[i]), float(np.sqrt(np.mean(error ** 2))),
                             float(error.max()), *map(float, worst)])
                print(f"model error, {name} point {i}: K = {rows[-1][0]:.4f} K_G, alpha {rows[-1][1]:+.3f} Å: "
                      f"rms {rows[-1][2]:.3f}, largest {rows[-1][3]:.3f} eV/Å at "
                      f"({worst[0]:+.1f}, {worst[1]:+.1f}) Å from the tip", flush=True)
            out[name] = rows
    finally:
        crack.close()
    return {"force_error_vs_sw": {"columns": ["K/K_G", "alpha", "rms", "largest", "x from tip", "y from tip"], **out}}


def joined(prior, branch):
    """``branch`` after the equilibria of ``prior`` (a branch it went on from; None: none)."""
    import dataclasses
    if prior is None:
        return branch
    names = ("alpha", "K", "energy", "max_force_free", "max_force_boundary", "evaluations", "positions", "shell")
    return dataclasses.replace(branch, **{n: np.concatenate([getattr(prior, n), getattr(branch, n)[1:]])
                                          for n in names if getattr(branch, n) is not None})


def figure(potential: str, outer: float = 0.0) -> None:
    """Every curve of this potential and boundary traced so far in one figure, the largest
    radius's folds marked (the radius-converged band); docs/figures/trapping_<potential>.png,
    _green.png for the Green's function boundary (any ``outer``: per radius the curve of the
    smallest, its ``outer`` in the label where it is not the first radius's)."""
    paths = [p for p in sorted(CURVES.glob(f"{potential}_R*.h5"))
             if not p.stem.endswith((".running", "_branch", "_branch_up"))]
    paths = [p for p in paths if ("_G" in p.stem) == bool(outer)]
    outers = {}                                   # radius -> the smallest outer traced there
    for path in paths:
        radius, _, rest = path.stem.removeprefix(f"{potential}_R").partition("_G")
        r, o = float(radius), float(rest or 0.0)
        outers[r] = min(outers.get(r, o), o)
    saved = {r: read_curve(CURVES / f"{stem(potential, r, o)}.h5") for r, o in sorted(outers.items())}
    first = outers[min(outers)] if outers else 0.0

    def label(r: float) -> str:
        return f"R = {r:g} Å" + (f" (G to {outers[r]:g} Å)" if outers[r] != first else "")
    # the branches followed at fixed K (--lower-end from the curve's first point, index 0, so
    # their energies share the curve's zero; --upper-end from K_G, its energy from there)
    branches = {f"R = {r:g} Å, at fixed K" + (" up" if end == "K_plus" else ""): read_curve(path)
                for r in sorted(saved) for end in ("K_minus", "K_plus")
                if (path := branch_path(potential, r, outers[r], end)).is_file()}
    if saved:
        *rest, largest = sorted(saved)
        FIGURES.mkdir(parents=True, exist_ok=True)
        name = f"trapping_{potential}" + ("_green" if outer else "")
        marks, folds = {}, ["K-", "K+"]
        for end, sign, up in (("K_minus", "K-", ""), ("K_plus", "K+", " up")):
            branch = branches.get(f"R = {largest:g} Å, at fixed K{up}")
            # a branch followed at fixed K towards a fold replaces the curve's fold there (the
            # trace stopped at kinks: short of it, or turned at one)
            if branch is not None:
                folds.remove(sign)
                marks[f"{sign} = {branch.K[-1] / branch.K_G:.3f} K_G (R = {largest:g} Å, at fixed K)"] = \
                    branch.K[-1] / branch.K_G
        saved[largest].plot(FIGURES / f"{name}.png", {**{label(r): saved[r] for r in rest}, **branches},
                            label=label(largest), marks=marks, folds=tuple(folds))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--potential", default="sw")
    parser.add_argument("--radii", type=float, nargs="+", default=[20.0, 30.0, 40.0])
    parser.add_argument("--length", type=float, default=4.0)
    parser.add_argument("--back", type=float, default=1.0)
    parser.add_argument("--outer", type=float, default=0.0,
                        help="Å: the shell moves by the lattice Green's function to this radius (0: on the K-field)")
    parser.add_argument("--check", action="store_true", help="the independent matscipy run at the first radius")
    parser.add_argument("--matscipy-precon", action="store_true",
                        help="--check: matscipy's own preconditioner in its Newton-Krylov (ASE's Exp on "
                             "regions I and II; fewer force calls for a model)")
    parser.add_argument("--folds", nargs="+", choices=["K_plus", "K_minus"], default=["K_plus", "K_minus"],
                        help="--check: the folds to bracket")
    parser.add_argument("--forward", type=Path,
                        help="with --length 0 and one radius: the forward leg traced before (a kept "
                             "<stem>.running.h5, copied aside), joined to this run's backward leg")
    parser.add_argument("--ase", action="store_true",
                        help="forces from the model's ASE calculator, not LAMMPS: for a model of many hops "
                             "(si-attention, 15 Å) LAMMPS' ghost shell along the one-period z axis holds 8 "
                             "copies of the cluster; ASE's periodic graph needs none")
    parser.add_argument("--forward-folds", type=int, default=None,
                        help="the forward leg ends once K has passed this many folds by 1 %% of K_G (1: just "
                             "past K-, for a leg left to run alone beside --forward)")
    parser.add_argument("--no-precondition", action="store_true",
                        help="Krylov iterations without the Hessian preconditioner (for comparison)")
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument("--figure", action="store_true", help="only redraw the figure from the saved curves")
    parser.add_argument("--past", action="store_true", help="only redo what happens past the folds of the saved curves")
    parser.add_argument("--model-error", action="store_true",
                        help="only compare the model's forces with native SW's along its saved curves")
    parser.add_argument("--lower-end", action="store_true",
                        help="only bracket K- at fixed loads from where the saved curves' backward legs stopped")
    parser.add_argument("--upper-end", action="store_true",
                        help="only bracket K+ at fixed loads from the saved curves' equilibria at K_G")
    args = parser.parse_args()
    if args.figure:
        figure(args.potential, args.outer)
        return 0
    if args.past:
        for radius in args.radii:
            past = past_saved(args.potential, radius, args.outer)
            update_json(args.json, lambda r: r["curves"][key(args.potential, radius, args.outer)].update(past))
        return 0
    if args.model_error:
        for radius in args.radii:
            out = model_error(args.potential, radius, args.outer)
            update_json(args.json, lambda r: r.setdefault("curves", {}).setdefault(
                key(args.potential, radius, args.outer), {}).update(out))
        return 0
    if args.lower_end or args.upper_end:
        for radius in args.radii:
            out = branch_end_at_fixed_K(args.potential, radius, args.outer, "K_plus" if args.upper_end else "K_minus")
            update_json(args.json, lambda r: r.setdefault("curves", {}).setdefault(
                key(args.potential, radius, args.outer), {}).update(out))
        return 0
    if args.check:
        radius = args.radii[0]
        path = CURVES / f"{stem(args.potential, radius, args.outer)}.h5"
        if not path.is_file():
            sys.exit(f"--check needs the curve at R = {radius:g} Å: run benchmarks/trapping.py --potential "
                     f"{args.potential} --radii {radius:g}" + (f" --outer {args.outer:g}" if args.outer else ""))
        branches = {name: read_curve(branch) for name in ("K_plus", "K_minus")
                    if (branch := branch_path(args.potential, radius, args.outer, name)).is_file()}
        out = independent_check(args.potential, radius, read_curve(path), args.folds, branches, args.matscipy_precon)
        name = f"R={radius:g}" if args.potential == "sw" and not args.outer else key(args.potential, radius, args.outer)
        update_json(args.json, lambda r: r.setdefault("independent", {}).setdefault(name, {}).update(out))
        return 0
    forward = None
    if args.forward:
        if args.length != 0 or len(args.radii) != 1:
            sys.exit("--forward joins a forward leg traced before to this run's backward leg: give --length 0 "
                     "and one radius")
        forward = args.forward
    for radius in args.radii:
        row, _ = run_radius(args.potential, radius, args.length, args.back, args.outer, forward, args.ase,
                            not args.no_precondition, args.forward_folds)
        update_json(args.json, lambda r: r.setdefault("curves", {}).update({key(args.potential, radius, args.outer): row}))
    figure(args.potential, args.outer)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
