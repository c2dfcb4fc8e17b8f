"""Flexible boundary conditions for the silicon crack (multiscale.atomistic.flexible): the
Cauchy-Born sublattice labelling, the flexible solve, and LAMMPS' forces against an
independent matscipy run with its own Stillinger-Weber."""

import numpy as np
import pytest

from multiscale.atomistic.flexible import FlexibleCrack, crack_cluster

RADIUS = 20.0   # Å: the solve converges in ~15 s here (at 12 Å the tip and shell interfere: 60 s)


@pytest.fixture(scope="module")
def crack():
    fc = FlexibleCrack("sw", radius=RADIUS, log=lambda m: None)
    yield fc
    fc.close()


@pytest.fixture(scope="module")
def at_K_G(crack):
    """The flexible equilibrium at K_G to 1e-5 eV/Å: matscipy's SinclairCrack solved."""
    return crack.solved(crack.K_G, fmax=1e-5)


@pytest.fixture(scope="module")
def solution(crack, at_K_G):
    return crack._solution(at_K_G)


SW_A, SI_ANI_A = 5.430949778405213, 5.430251803374894     # Å, as in materials.json


@pytest.mark.parametrize("a0", [SW_A, SI_ANI_A])
@pytest.mark.parametrize("cells", [(13, 9, 1), (13, 10, 1), (16, 12, 1), (19, 14, 1)])
def test_the_crack_opens_the_shuffle_gap_whatever_the_cluster_size(a0, cells):
    """The tip (the cluster's centre) lies in the middle of the wide (111) gap, so that the
    crack breaks one bond per surface atom, the [111] bond, as the surface energy behind K_G
    assumes; and 0.55 Å ahead of a bond across it, as in SW's 20 Å cluster.  matscipy's
    cluster() alone put it in a glide gap (three bonds per atom) for three of these four sizes
    (SW's crack at 30 and 40 Å, si-ani's at 20, 30 and 40 Å) and midway between bond columns."""
    from ase.neighborlist import neighbor_list
    cluster, shift = crack_cluster(a0, cells)
    centre = cluster.cell.diagonal()[:2] / 2.0
    i, j, D = neighbor_list("ijD", cluster, 2.6)
    y = cluster.positions[:, 1] - centre[1]
    across = (y[i] < 0) & (y[i] + D[:, 1] > 0) & (np.abs(cluster.positions[i, 0] - centre[0]) < 15.0)
    assert across.sum() >= 8
    assert np.allclose(D[across], [0.0, a0 * np.sqrt(3) / 4, 0.0], atol=1e-6)     # only [111] bonds
    assert np.allclose(-y[i[across]], a0 * np.sqrt(3) / 8, atol=1e-3)              # the tip mid-gap
    x = cluster.positions[i[across], 0] - centre[0]
    period = a0 * np.sqrt(6) / 4                                                   # between bond columns
    assert np.allclose(np.mod(x + period / 6 + period / 2, period) - period / 2, 0.0, atol=1e-3)
    assert np.abs(x).min() == pytest.approx(period / 6, abs=1e-3) and x[np.argmin(np.abs(x))] < 0
    same, _ = crack_cluster(a0, cells, shift=shift)
    assert np.array_equal(same.positions, cluster.positions)


def test_cauchy_born_shifts_remove_the_far_field_forces(crack):
    """Without the sublattice shift the K-field leaves ~0.4 eV/Å on every far-field atom; the
    shifts with the right labelling remove all but a few meV/Å, the wrong one doubles it."""
    check = crack.shift_check
    kept = check[check["kept"]]
    other = check["swapped" if check["kept"] == "as coloured" else "as coloured"]
    assert 0.3 < check["without shifts"] < 0.6
    assert kept < 0.03 * check["without shifts"]
    assert other > 1.5 * check["without shifts"]


def test_flexible_solve_relaxes_the_free_atoms_and_the_tip(solution):
    assert solution.max_force_free <= 1e-3
    assert abs(solution.alpha) < 1.0          # at K_G the tip stays within its lattice cell
    # the shell keeps the field's error (nonlinear elasticity near the tip, surfaces), a tenth of
    # the 0.4-0.5 eV/Å the unshifted field leaves
    assert solution.max_force_boundary < 0.2


def test_a_solve_that_does_not_converge_says_where(crack, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)      # matscipy writes the last configuration here
    with pytest.raises(RuntimeError, match=r"flexible solve at K = .* \(1.000 K_G\) from alpha = 0.000 Å "
                                           r"did not reach fmax = 1e-06 eV/Å in 1 Newton-Krylov steps"):
        crack.solve(crack.K_G, fmax=1e-6, steps=1)


@pytest.mark.slow
def test_lammps_equals_an_independent_matscipy_run(crack, solution):
    """The same solve with matscipy's own Stillinger-Weber calculator (its 1985 parameters,
    LAMMPS' Si.sw) instead of LAMMPS: the same tip position and far-field forces."""
    from matscipy.calculators.manybody import Manybody
    from matscipy.calculators.manybody.explicit_forms.stillinger_weber import (
        StillingerWeber, Stillinger_Weber_PRB_31_5262_Si)
    ours = solution
    theirs_crack = FlexibleCrack("sw", radius=RADIUS, log=lambda m: None,
                                 calculator=Manybody(**StillingerWeber(Stillinger_Weber_PRB_31_5262_Si)))
    theirs = theirs_crack.solve(theirs_crack.K_G, fmax=1e-3)
    assert theirs_crack.K_G == pytest.approx(crack.K_G, rel=1e-12)
    # each fits its own Cauchy-Born model; the tip force is flat in alpha near equilibrium, so
    # small force differences move the tip by thousandths of an Å (of a 3.3 Å lattice period)
    assert abs(ours.alpha - theirs.alpha) < 0.01
    assert ours.max_force_boundary == pytest.approx(theirs.max_force_boundary, rel=0.02)


def test_continuation_points_are_flexible_equilibria(crack):
    """A short stretch of the trapping curve from K_G (multiscale.atomistic.trapping): every
    point is solved (region I and the tip force within fmax), K falls as the tip advances on
    this branch (raising K moves the tip back, the unstable segment), and matscipy's own
    flexible solve at the last point's K lands on the same tip position."""
    from multiscale.atomistic.trapping import trace
    curve = trace(crack, length=0.4, back=0.0, ds=0.1, fmax=1e-4, log=lambda m: None)
    assert curve.stopped == "" and len(curve.K) >= 3
    assert curve.max_force_free.max() <= 2e-4                # 1e-4 per component
    assert np.all(np.diff(curve.K) < 0) and np.all(np.diff(curve.alpha) > 0)
    assert curve.K[0] == pytest.approx(crack.K_G)
    assert curve.alpha[-1] - curve.alpha[0] >= 0.4
    independent = crack.solve(float(curve.K[-1]), alpha=float(curve.alpha[-1]), fmax=1e-4)
    assert independent.alpha == pytest.approx(curve.alpha[-1], abs=5e-3)


def one_point_curve(crack, sc):
    """A TrappingCurve holding one flexible equilibrium ``sc`` (a SinclairCrack solved)."""
    from multiscale.atomistic.trapping import TrappingCurve
    one = np.ones(1)
    cell = sc.cryst.cell.diagonal()
    return TrappingCurve(one * sc.alpha, one * sc.kI, one, one, one, np.ones(1, int),
                         sc.atoms.positions[sc.regionI][None].copy(), K_G=crack.K_G, radius=RADIUS,
                         neighbour=crack.material.lattice_constant * 3 ** 0.5 / 4,
                         origin=(float(cell[0] / 2), float(cell[1] / 2)))


def test_past_fold_heals_the_crack_far_below_the_band_and_keeps_an_equilibrium(crack, at_K_G):
    """multiscale.atomistic.trapping.past_fold from a flexible equilibrium at K_G (a one-point
    curve): at the same load region I is already relaxed (no bond changes); at 0.3 K_G, far
    below R = 20 Å's K- (0.55 K_G), the crack faces behind the tip bond again (FIRE downhill
    with the tip held), bonds that cross the crack plane."""
    from multiscale.atomistic.trapping import past_fold
    curve = one_point_curve(crack, at_K_G)
    same = past_fold(crack, curve, 0, 1.0)
    assert same["converged"] and same["steps"] <= 5 and same["broken"] == same["formed"] == []
    closed = past_fold(crack, curve, 0, 0.3)
    assert closed["converged"] and closed["broken"] == []
    plane = [b for b in closed["formed"] if abs(b[3]) < 1.0]
    assert len(plane) >= 1 and all(b[2] < 0 for b in plane)     # behind the tip, across the plane


@pytest.mark.slow
def test_branch_end_at_fixed_loads_brackets_the_continuations_lower_fold(crack, at_K_G):
    """trapping.branch_end, the route to si-ani's K- past its kinks, on SW's field-shell crack
    at R = 20 Å: from the flexible equilibrium at K_G down in steps of 5 % K_G, halved on every
    failure, to a bracket 0.625 % K_G wide (twice 5 % halved three times) that holds the K- of
    two other methods at this radius: the continuation's fold, 0.5499 K_G, and matscipy's own
    solves with its own SW, 0.5487-0.5500 (benchmarks/results/trapping.json, "sw R=20" and
    "independent")."""
    from multiscale.atomistic.trapping import branch_end
    curve = one_point_curve(crack, at_K_G)
    kept = []
    good, bad, branch = branch_end(crack, curve, 0, -1.0, step=0.05, smallest=0.005,
                                   log=lambda m: None, keep=kept.append)
    assert bad < good and (good - bad) / crack.K_G == pytest.approx(0.00625, rel=1e-6)
    assert bad / crack.K_G - 0.001 < 0.5499 < good / crack.K_G + 0.001
    assert branch.K[-1] == good and np.all(np.diff(branch.K) < 0) and np.all(np.diff(branch.alpha) > 0)
    assert len(kept) == len(branch.K) - 1 and branch.max_force_free.max() <= 2e-5


# -- Sinclair's flexible boundary with a lattice Green's function (atomistic/green.py) ---------
OUTER = 50.0    # Å: the smallest reservoir the R = 20 Å cluster allows (region III + 3 cutoffs = 43 Å)


@pytest.fixture(scope="module")
def green(crack):
    from multiscale.atomistic.green import LatticeGreen
    return LatticeGreen(crack, outer=OUTER)


def test_green_function_is_the_lattice_response_lammps_feels(green):
    """w = G phi for forces phi on the shell: LAMMPS' native SW (not the matscipy Hessian G was
    built from) finds forces -eps phi on the shell and none on the other free atoms when the
    continued cluster moves by eps w."""
    from multiscale.engines.lammps_calculator import LammpsCalculator
    rng = np.random.default_rng(7)
    phi = rng.normal(size=(len(green.shell), 3))
    w = green.response(phi)
    atoms = green.deformed.copy()
    atoms.calc = LammpsCalculator.for_potential("sw")
    eps = 1e-4
    moved = atoms.copy()
    moved.calc = atoms.calc
    forces = []
    for sign in (1, -1):
        moved.positions[:] = atoms.positions
        moved.positions[green.free] += sign * eps * w
        forces.append(moved.get_forces()[green.free])
    dF = (forces[0] - forces[1]) / (2 * eps)               # = -H w on the free atoms
    expected = np.zeros_like(dF)
    expected[green._shell_free] = -phi
    # the same potential in both: only the central difference's O(eps^2) remains (measured 5e-9)
    assert np.abs(dF - expected).max() < 1e-6 * np.abs(phi).max()
    atoms.calc.close()


def test_green_boundary_leaves_no_force_on_the_shell(crack):
    """The flexible equilibrium at K_G with the shell on the K-field keeps 0.05-0.1 eV/Å on region
    II (the crack faces' surface relaxation, region I's nonlinear core); with the shell moving by
    the lattice Green's function its atoms are solved like region I's, to fmax."""
    from multiscale.atomistic.trapping import equilibrium
    on_field = equilibrium(crack, outer=None, log=lambda m: None)
    flexible = equilibrium(crack, outer=OUTER, log=lambda m: None)
    assert on_field.max_force_free < 2e-5 and flexible.max_force_free < 2e-5
    assert on_field.max_force_boundary > 0.05
    assert max(flexible.max_force_boundary, flexible.max_force_far) < 2e-5
    assert flexible.max_force_boundary < 1e-3 * on_field.max_force_boundary


@pytest.fixture(scope="module")
def si_ani_green():
    """si-ani's crack at R = 20 Å with the Green's function boundary: (crack, augmented system,
    its equilibrium at K_G by the usual route: fixed tip, field shell, then G)."""
    from multiscale.atomistic import trapping
    crack = FlexibleCrack("si-ani", radius=RADIUS, log=lambda m: None)
    system = trapping._system(crack, 1.0, OUTER, lambda m: None)
    yield crack, system, trapping._first(system, 1e-5, 20.0, lambda m: None)
    crack.close()


def test_si_anis_crack_breaks_one_bond_per_surface_atom_as_sws(si_ani_green):
    """si-ani's flexible equilibrium at K_G (Green's function boundary) is the shuffle crack:
    behind the tip every broken bond is a [111] bond and no atom of region I is left with one
    bond (matscipy's cluster alone gave si-ani a glide crack, its face atoms singly bonded, their
    second neighbours on the model's 3.8 Å angular cutoff: kinks, stalls, and a K- 11 % below
    SW's).  The tip lies within 0.5 Å of alpha = 0, as SW's (0.26 and 0.33 Å with outer = 80 Å)."""
    from ase.neighborlist import neighbor_list
    crack, system, x = si_ani_green
    f_free, f_alpha, _ = system.forces(x)        # regions I-III (u and phi) and the tip
    assert max(np.abs(f_free).max(), 20.0 * abs(f_alpha)) < 2e-5
    assert abs(x[system.n]) < 0.5
    system.set_state(x)
    atoms, reference = system.sc.atoms, system.sc.cryst
    i, j, D = neighbor_list("ijD", reference, 2.6)
    stretched = np.linalg.norm(atoms.positions[j] - atoms.positions[i] + D - (reference.positions[j] - reference.positions[i]),
                               axis=1) > 3.0
    assert stretched.sum() >= 10
    assert np.allclose(np.abs(D[stretched]), [0.0, crack.material.lattice_constant * np.sqrt(3) / 4, 0.0], atol=1e-6)
    bonds = np.bincount(neighbor_list("i", atoms, 2.7), minlength=len(atoms))
    assert bonds[system.sc.regionI].min() >= 3


def test_fire_at_fixed_load_stops_where_its_flow_leaves_the_branch(si_ani_green):
    """FIRE on the augmented system at fixed K (x = (u, phi, alpha)), the fallback where
    Newton-Krylov stalls at a kink of a C1 model's forces, is no descent (the tip force is
    -dE/dalpha only at equilibrium; phi is no position): from si-ani's equilibrium at K_G with
    region I displaced by up to 0.005 Å its flow runs off (0.35 Å within 35 steps).  It must
    then say so - not converged, stopped at ``near`` - so that ``_nearby_equilibrium`` refuses
    that state and the callers halve the step."""
    from multiscale.atomistic import trapping
    crack, system, x = si_ani_green
    start = x.copy()
    start[:system.n_u] += np.random.default_rng(1).uniform(-0.005, 0.005, system.n_u)
    y, steps, converged = trapping._relaxed_at_load(system, start, crack.K_G, 1e-5, 20.0, near=0.3)
    assert not converged and steps < trapping.FIRE_STEPS and y[-1] == crack.K_G
    assert trapping._moved(system, y, x) > 0.3


def test_hessian_preconditioner_gives_the_same_curve_for_fewer_force_calls(crack):
    """Five corrector steps along the trapping curve from K_G (Green's function boundary), with
    and without the Stillinger-Weber Hessian preconditioner (multiscale.atomistic.preconditioner):
    the same points to the corrector's tolerance, and at most a third of the force calls
    (measured at R = 20 Å, outer 80 Å: 16-17 calls a step against 32-202)."""
    from multiscale.atomistic import trapping
    system = trapping._system(crack, 1.0, OUTER, lambda m: None)
    x = trapping._first(system, 1e-5, 20.0, lambda m: None)
    weight = 1.0 / system.scale
    tangent = (trapping._at_load(system, x, 0.99 * crack.K_G, 1e-5, 20.0) - x) * weight
    tangent *= np.sign(tangent[system.n]) / np.linalg.norm(tangent)

    def steps():
        base, t, calls, points = x, tangent, system.calls, []
        for _ in range(5):
            y = trapping._corrected(system, base, t, 0.05, 1e-5, 20.0, 8, 40)
            t = (y - base) * weight / np.linalg.norm((y - base) * weight)
            base = y
            points.append(y[[system.n, -1]])
        return np.array(points), system.calls - calls

    plain, plain_calls = steps()
    system.precondition(x)
    preconditioned, calls = steps()
    assert system.preconditioner.refreshes == 1
    assert plain[-1, 0] - x[system.n] > 0.05                    # the tip advanced
    assert np.abs(preconditioned[:, 0] - plain[:, 0]).max() < 5e-4          # alpha, Å
    assert np.abs(preconditioned[:, 1] - plain[:, 1]).max() < 5e-4 * crack.K_G
    assert calls <= plain_calls / 3
