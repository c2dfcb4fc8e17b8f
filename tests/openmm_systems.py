"""OpenMM systems for the OpenMM tests: topologies from ASE structures, single points,
and a capped alanine (ACE-ALA-NME) built from internal coordinates.

Units at this boundary: OpenMM works in nm and kJ/mol, the tests compare in Å and eV.
"""

from __future__ import annotations

import math
import random

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
from ase import Atoms

from multiscale.units import EV_TO_KJ_PER_MOL  # the factor the OpenMM module uses


def topology_of(atoms: Atoms) -> app.Topology:
    """One residue per atom; periodic box vectors from the cell when ``atoms.pbc`` is all True."""
    top = app.Topology()
    chain = top.addChain()
    for symbol in atoms.get_chemical_symbols():
        top.addAtom(symbol, app.Element.getBySymbol(symbol), top.addResidue(symbol, chain))
    if atoms.pbc.all():
        top.setPeriodicBoxVectors(atoms.cell.array * 0.1)
    return top


def system_of(topology: app.Topology, *forces) -> openmm.System:
    """A System with the topology's masses and box, holding ``forces``."""
    system = openmm.System()
    for atom in topology.atoms():
        system.addParticle(atom.element.mass)
    if topology.getPeriodicBoxVectors() is not None:
        system.setDefaultPeriodicBoxVectors(*topology.getPeriodicBoxVectors())
    for force in forces:
        system.addForce(force)
    return system


def single_point(system: openmm.System, positions_angstrom, platform: str = "Reference",
                 groups: set[int] | None = None, parameters: dict | None = None,
                 properties: dict | None = None) -> tuple[float, np.ndarray]:
    """Energy (eV) and forces (N, 3) eV/Å of ``system`` at positions given in Å; properties:
    the platform's (e.g. {"Precision": "double"} for CUDA)."""
    context = openmm.Context(system, openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName(platform), properties or {})
    context.setPositions(np.asarray(positions_angstrom, dtype=np.float64) * 0.1)
    for name, value in (parameters or {}).items():
        context.setParameter(name, value)
    kwargs = {} if groups is None else {"groups": groups}
    state = context.getState(getEnergy=True, getForces=True, **kwargs)
    energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole) / EV_TO_KJ_PER_MOL
    forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.angstrom)
    return energy, np.asarray(forces) / EV_TO_KJ_PER_MOL


def place(a: np.ndarray, b: np.ndarray, c: np.ndarray, bond: float, angle: float,
          dihedral: float) -> np.ndarray:
    """Atom d bonded to c with |cd| = bond (Å), angle b-c-d and dihedral a-b-c-d in degrees."""
    theta, phi = math.radians(angle), math.radians(dihedral)
    bc = (c - b) / np.linalg.norm(c - b)
    n = np.cross(b - a, bc)
    n /= np.linalg.norm(n)
    m = np.cross(n, bc)
    local = np.array([-bond * math.cos(theta), bond * math.sin(theta) * math.cos(phi),
                      bond * math.sin(theta) * math.sin(phi)])
    return c + local[0] * bc + local[1] * m + local[2] * n


def capped_alanine(phi: float = -80.0, psi: float = 80.0) -> tuple[app.Topology, np.ndarray]:
    """ACE-ALA-NME heavy atoms (Å) from standard peptide internal coordinates; no hydrogens.

    phi, psi: ALA's backbone dihedrals in degrees (default: the compact C7eq conformer);
    peptide bonds trans; CB placed for an L residue.
    """
    x = {}
    x["ACE:CH3"] = np.zeros(3)
    x["ACE:C"] = np.array([1.52, 0.0, 0.0])
    dummy = np.array([2.0, 1.4, 0.0])  # fixes the plane of the first dihedral
    x["ALA:N"] = place(dummy, x["ACE:CH3"], x["ACE:C"], 1.33, 116.0, 180.0)
    x["ACE:O"] = place(x["ALA:N"], x["ACE:CH3"], x["ACE:C"], 1.23, 121.0, 180.0)
    x["ALA:CA"] = place(x["ACE:CH3"], x["ACE:C"], x["ALA:N"], 1.46, 122.0, 180.0)  # omega
    x["ALA:C"] = place(x["ACE:C"], x["ALA:N"], x["ALA:CA"], 1.52, 111.0, phi)
    x["NME:N"] = place(x["ALA:N"], x["ALA:CA"], x["ALA:C"], 1.33, 116.0, psi)
    x["ALA:O"] = place(x["NME:N"], x["ALA:CA"], x["ALA:C"], 1.23, 121.0, 180.0)
    x["NME:C"] = place(x["ALA:CA"], x["ALA:C"], x["NME:N"], 1.46, 122.0, 180.0)  # omega
    # L-alanine: seen from HA, CO -> CB -> N run clockwise, i.e. (C-CA) x (CB-CA) . (N-CA) > 0
    x["ALA:CB"] = place(x["ALA:C"], x["ALA:N"], x["ALA:CA"], 1.53, 110.5, -122.5)
    ca = x["ALA:CA"]
    assert np.dot(np.cross(x["ALA:C"] - ca, x["ALA:CB"] - ca), x["ALA:N"] - ca) > 0

    top = app.Topology()
    chain = top.addChain()
    layout = {"ACE": ["CH3", "C", "O"], "ALA": ["N", "CA", "C", "O", "CB"], "NME": ["N", "C"]}
    positions = []
    for resname, names in layout.items():
        residue = top.addResidue(resname, chain)
        for name in names:
            top.addAtom(name, app.Element.getBySymbol(name[0]), residue)
            positions.append(x[f"{resname}:{name}"])
    top.createStandardBonds()
    return top, np.array(positions)


def solvated_capped_alanine(box_nm: float = 2.0):
    """ACE-ALA-NME with hydrogens (amber14) in a cubic TIP3P box of edge ``box_nm``.

    Returns (modeller, forcefield, indices of the peptide's atoms).
    """
    forcefield = app.ForceField("amber14-all.xml", "amber14/tip3p.xml")
    top, positions = capped_alanine()
    # centre it in the box: OpenMM's Reference PME drops the direct-space pairs of an atom at
    # a coordinate like -3e-17 nm (it wraps onto the box face), which the first atom would be
    positions += 5.0 * box_nm - positions.mean(axis=0)
    modeller = app.Modeller(top, positions * unit.angstrom)
    state = random.getstate()  # addHydrogens starts from random positions; fix them
    random.seed(20240611)
    try:
        modeller.addHydrogens(forcefield)
    finally:
        random.setstate(state)
    peptide = [atom.index for atom in modeller.topology.atoms()]
    modeller.addSolvent(forcefield, model="tip3p",
                        boxSize=openmm.Vec3(box_nm, box_nm, box_nm) * unit.nanometer)
    return modeller, forcefield, peptide
