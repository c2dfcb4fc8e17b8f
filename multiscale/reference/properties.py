"""Material properties computed in LAMMPS with any potential (native or through the plugin).

Lattice constant (Å), cubic elastic constants C11, C12, C44 (GPa, relaxed internal
coordinates) and relaxed surface energies (J/m^2) of a diamond-cubic crystal; these are
what the shipped silicon model is validated on against native Stillinger-Weber.
"""

from __future__ import annotations

import math
from typing import Sequence

from ..engines.lammps import quiet_lammps
from ..units import BAR_TO_GPA, EV_PER_A2_TO_J_PER_M2

# surface normal (y) with in-plane x and z for LAMMPS' lattice orient; the true periods of
# the diamond lattice along them (units of a: LAMMPS' default spacings are the rotated unit
# cell's bounding box, which is not a period along [11-2]); where the slab is cut (units of
# the y period), midway in a gap between atomic planes: (111) at the shuffle plane, the
# wide gap crossed by one bond per surface atom, not the glide plane crossed by three.
SURFACES = {
    "111": ("1 1 -2", "1 1 1", "1 -1 0", "sqrt(6)/2 sqrt(3) sqrt(2)/2", 0.125),
    "110": ("0 0 1", "1 1 0", "-1 1 0", "1 sqrt(2)/2 sqrt(2)/2", 0.25),
    "100": ("0 1 0", "1 0 0", "0 0 -1", "1 1 1", 0.125),
}


def lattice_constant(pair_lines: Sequence[str], plugin: bool = False, guess: float = 5.431,
                     element_mass: float = 28.0855, comm=None) -> float:
    """Equilibrium cubic lattice constant (Å) of the diamond structure; LAMMPS runs on the
    MPI communicator ``comm`` (default MPI_COMM_WORLD), as in the other functions here."""
    lmp = quiet_lammps(plugin, comm)
    try:
        lmp.commands_list([
            "units metal", "atom_style atomic", f"lattice diamond {guess}",
            "region box block 0 3 0 3 0 3", "create_box 1 box", "create_atoms 1 box",
            f"mass 1 {element_mass}", *pair_lines, "fix relax all box/relax iso 0.0 vmax 0.001",
            "thermo 0", "minimize 0 1e-12 10000 100000", "unfix relax", "minimize 0 1e-12 1000 10000"])
        return lmp.get_thermo("lx") / 3
    finally:
        lmp.close()


def elastic_constants(pair_lines: Sequence[str], a: float, plugin: bool = False,
                      strain: float = 1e-4, element_mass: float = 28.0855, comm=None) -> dict:
    """C11, C12, C44 (GPa) from central differences of the stress, internal relaxation included."""

    def stress(kind: str, delta: float):
        lmp = quiet_lammps(plugin, comm)
        try:
            lmp.commands_list([
                "units metal", "atom_style atomic", f"lattice diamond {a}",
                "region box prism 0 2 0 2 0 2 0 0 0", "create_box 1 box", "create_atoms 1 box",
                f"mass 1 {element_mass}", *pair_lines, "thermo 0"])
            if kind == "normal":
                lmp.command(f"change_box all x scale {1 + delta} remap")
            else:  # engineering shear strain gamma_yz = delta
                lmp.command(f"change_box all yz delta {delta * 2 * a} remap units box")
            lmp.command("minimize 0 1e-12 10000 100000")
            return {k: -lmp.get_thermo(k) * BAR_TO_GPA for k in ("pxx", "pyy", "pyz")}
        finally:
            lmp.close()

    plus, minus = stress("normal", strain), stress("normal", -strain)
    shear_plus, shear_minus = stress("shear", strain), stress("shear", -strain)
    return {"C11": (plus["pxx"] - minus["pxx"]) / (2 * strain),
            "C12": (plus["pyy"] - minus["pyy"]) / (2 * strain),
            "C44": (shear_plus["pyz"] - shear_minus["pyz"]) / (2 * strain)}


def surface_energy(pair_lines: Sequence[str], a: float, surface: str = "111", plugin: bool = False,
                   layers: int = 4, element_mass: float = 28.0855, relax: bool = True,
                   comm=None) -> float:
    """Surface energy in J/m^2 of a slab with two free (unreconstructed) surfaces, ``layers``
    periods thick; relaxed by minimisation unless ``relax`` is False."""
    x, y, z, spacing, cut = SURFACES[surface]
    spacing = " ".join(str(eval(v, {"sqrt": math.sqrt})) for v in spacing.split())

    def energy(vacuum: bool) -> tuple[float, int, float]:
        lmp = quiet_lammps(plugin, comm)
        try:
            lmp.commands_list([
                "units metal", "atom_style atomic", "boundary p p p",
                f"lattice diamond {a} orient x {x} orient y {y} orient z {z} spacing {spacing}",
                f"region box block 0 1 {cut} {cut + layers + (2 if vacuum else 0)} 0 1",
                f"region crystal block -100 100 {cut} {cut + layers} -100 100", "create_box 1 box",
                "create_atoms 1 region crystal", f"mass 1 {element_mass}", *pair_lines,
                "thermo 0", "minimize 0 1e-10 10000 100000" if relax else "run 0"])
            return lmp.get_thermo("pe"), lmp.get_natoms(), lmp.get_thermo("lx") * lmp.get_thermo("lz")
        finally:
            lmp.close()

    bulk_e, bulk_n, _ = energy(vacuum=False)
    slab_e, slab_n, area = energy(vacuum=True)
    assert slab_n == bulk_n
    return (slab_e - bulk_e) / (2 * area) * EV_PER_A2_TO_J_PER_M2
