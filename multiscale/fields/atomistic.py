"""Near-tip stress fields from atomistic crack regions, to fine-tune a field predictor.

A sample is an edge-cracked specimen (``sent``, crack angle 0) of the isotropic solid
equivalent to the potential's silicon (:func:`multiscale.continuum.boundary.isotropic_equivalent`:
same plane-strain modulus E' as the (111)[1-10] crack, Voigt Poisson ratio) under the remote
stress that gives K_I = ``k`` K_G at its tip.  The (111)[1-10] atomistic region of the
coupled run (:class:`multiscale.atomistic.region.CrackRegion`) sits at the tip, its shell
placed by the finite-element field of that specimen (the coupled run's ``"fem"`` continuum),
its interior relaxed in LAMMPS through the multiscale pair style.  Per-atom stresses
(``compute stress/atom`` over the atomic volume a^3/8, GPa) are coarse-grained onto points
around the tip with a normalised Gaussian of width ``smoothing``:

    sigma(x) = sum_i g(|x - X_i|) sigma_i / sum_i g(|x - X_i|),   g(d) = exp(-d^2 / 2 w^2),

over reference positions X_i of interior atoms (a weighted average: no library offers this
for LAMMPS per-atom output, and it is three lines).  Points lie on rings 3 Å .. (interior
radius - 3 w) from the tip, so no kernel reaches the fixed shell.

The HDF5 layout is the FE dataset's (``multiscale.fields.data``) with displacements NaN
(an atomistic region has no absolute displacement) and ``source = "atomistic"``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import h5py
import numpy as np

from ..continuum.boundary import FEMContinuum, isotropic_equivalent
from ..continuum.sif import ring_points
from ..continuum.specimen import Specimen
from ..reference.material import material


def coarse_grain(points: np.ndarray, atoms_xy: np.ndarray, atom_stress: np.ndarray,
                 width: float) -> np.ndarray:
    """Gaussian-weighted average (n, 3) GPa of per-atom stresses ``atom_stress`` (m, 3) at
    ``atoms_xy`` (m, 2) Å onto ``points`` (n, 2) Å; ``width`` the Gaussian's sigma, Å."""
    d2 = ((points[:, None, :] - atoms_xy[None, :, :]) ** 2).sum(-1)
    g = np.exp(-0.5 * d2 / width ** 2) * (d2 < (4 * width) ** 2)
    total = g.sum(axis=1)
    if np.any(total < 1e-3):
        raise ValueError("a coarse-graining point has no atom within 4 widths; keep points inside "
                         "the region's interior")
    return g @ atom_stress / total[:, None]


# the shipped sets: training loads span 0.8-1.6 K_G on five crack lengths; held out are
# other crack lengths at loads in between (no crack advances below ~2.3 K_G, docs/crack_region.md)
TRAIN = {"crack_lengths": (48.0, 56.0, 64.0, 72.0, 80.0), "k_over_kg": (0.8, 1.0, 1.2, 1.4, 1.6)}
TEST = {"crack_lengths": (52.0, 68.0, 84.0), "k_over_kg": (0.9, 1.1, 1.3, 1.5)}


def generate(path: str | Path, crack_lengths, k_over_kg, potential: str = "si-ani", mat=None,
             width: float = 160.0, height: float = 320.0, radius: float = 30.0,
             boundary: float = 8.0, smoothing: float = 1.5, fmax: float = 1e-3,
             progress: bool = True) -> Path:
    """Relax one region per crack length (Å) at each load in ``k_over_kg`` (ramped upward,
    each relaxation starting from the last) and write the coarse-grained stresses to ``path``.
    ``mat``: the potential's Material if already computed (:func:`multiscale.reference.material.material`)."""
    from mpi4py import MPI

    from ..atomistic.region import CrackRegion

    comm = MPI.COMM_WORLD
    say = (lambda m: print(m, file=sys.stderr, flush=True)) if progress else (lambda m: None)
    t0 = time.perf_counter()
    mat = mat or material(potential, comm)
    E, nu = isotropic_equivalent(mat)
    work = Path(path).with_suffix("")
    rows = {k: [] for k in ("params", "tips", "k", "xy", "u", "sigma", "seconds", "k_over_kg", "tip_found")}
    points = ring_points(3.0, radius - boundary - 3 * smoothing)
    loads = sorted(float(k) for k in k_over_kg)
    total, done = len(crack_lengths) * len(loads), 0
    for a in crack_lengths:
        options = {"kind": "sent", "width": width, "height": height, "crack_length": float(a)}
        continuum = FEMContinuum(mat, options)
        region = CrackRegion({"potential": potential, "radius": radius, "boundary": boundary,
                              "fmax": fmax, "lattice_constant": mat.lattice_constant,
                              "max_iterations": 5000},
                             comm=comm, workdir=work / f"a{a:g}", log=lambda m: None)
        try:
            for i, frac in enumerate(loads):
                t1 = time.perf_counter()
                k1 = frac * continuum.k_g
                tip = np.zeros(2)
                res = region.relax(continuum.boundary_displacements(region.boundary_reference, k1, tip), i)
                if res["tip"][0] > 1.0:
                    raise RuntimeError(f"a = {a} Å, K = {frac} K_G: the crack advanced (tip at "
                                       f"{res['tip'][0]:.2f} Å); use loads below the fracture load")
                sigma = coarse_grain(points, res["stress_xy"], res["stress"], smoothing)
                stress = k1 / continuum.k_per_stress(tip)       # remote stress of this K, GPa
                spec = Specimen("sent", width, height, float(a), 0.0, stress, E, nu)
                tips, kk = np.zeros((2, 2)), np.zeros((2, 2))
                tips[0], kk[0, 0] = spec.tips()[0], k1
                rows["params"].append(spec.as_vector()), rows["tips"].append(tips)
                rows["k"].append(kk), rows["xy"].append(spec.tips()[0] + points)
                rows["u"].append(np.full((len(points), 2), np.nan)), rows["sigma"].append(sigma)
                rows["seconds"].append(time.perf_counter() - t1), rows["k_over_kg"].append(frac)
                rows["tip_found"].append(res["tip"][0])   # bond-breaking tip, Å from the continuum's
                done += 1
                say(f"[{done}/{total}] a = {a:g} Å, K = {frac:.2f} K_G: {res['iterations']} minimiser "
                    f"steps, tip found at {res['tip'][0]:+.2f} Å, max sigma_yy {sigma[:, 1].max():.1f} GPa, "
                    f"{time.perf_counter() - t0:.0f} s")
        finally:
            region.close()
    if comm.Get_rank() == 0:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(path, "w") as f:
            for key, val in rows.items():
                f[key] = np.asarray(val, dtype=float)
            f.attrs["format"] = "multiscale-crack-fields"
            f.attrs["source"] = "atomistic"
            f.attrs["seed"] = -1
            f.attrs["potential"] = potential
            f.attrs["smoothing"] = smoothing
            f.attrs["material"] = json.dumps(mat.as_dict())
            f.attrs["units"] = "length L, stress GPa, K GPa sqrt(L)"
    comm.Barrier()
    return Path(path)


def build(work: str | Path = "results/crack_fields", potential: str = "si-ani") -> tuple[Path, Path]:
    """The training and held-out atomistic sets, ``atomistic_train.h5`` and ``atomistic_test.h5``
    in ``work`` (about 5 minutes on one core for si-ani)."""
    work = Path(work)
    mat = material(potential)
    train = generate(work / "atomistic_train.h5", potential=potential, mat=mat, **TRAIN)
    test = generate(work / "atomistic_test.h5", potential=potential, mat=mat, **TEST)
    return train, test
