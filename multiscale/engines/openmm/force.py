"""Build an openmm-torch TorchForce, or a copyable PythonForce, from a model file and a Topology."""

from __future__ import annotations

import os
import re
from typing import Iterable, Optional

import numpy as np
import torch  # before openmmtorch, which needs torch's libraries loaded

import multiscale

from ...model.artifact import load_potential
from ...model.contract import check_charge_spin
from .module import OpenMMModel


def create_module(model, topology, atoms: Optional[Iterable[int]] = None, charge: float = 0.0,
                  spin: int = 1, periodic: Optional[bool] = None,
                  gather: bool = True) -> torch.jit.ScriptModule:
    """The scripted module that :func:`create_force` wraps.

    model: a model file, a shipped model's name or ``multiscale.LoadedModel``; topology: ``openmm.app.Topology``;
    atoms: indices of the atoms the model acts on (all if None); charge in e; spin
    multiplicity; periodic: default from whether the topology has a box.  With ``gather``
    the module takes every atom's positions and picks ``atoms`` itself (TorchForce);
    without, it takes only those atoms' positions (PythonForce with ``setParticles``).
    """
    module = _openmm_model(load_potential(model, "OpenMM"), topology, atoms, charge, spin, periodic, gather)
    if isinstance(module.model, torch.jit.ScriptModule):
        return torch.jit.script(module)
    raise ValueError(f"{module.model.path} is a compiled .pt2 model: openmm-torch 1.5 runs only TorchScript; "
                     "create_force and create_python_force run it in a PythonForce")


def _openmm_model(loaded, topology, atoms, charge: float, spin: int, periodic: Optional[bool],
                  gather: bool) -> OpenMMModel:
    """The (unscripted) OpenMMModel of :func:`create_module`."""
    meta = loaded.metadata
    species, chosen = _species(loaded, topology, atoms, charge, spin)
    if periodic is None:
        periodic = topology.getPeriodicBoxVectors() is not None
    check_whole_system(meta, bool(periodic))
    subset = torch.tensor(chosen, dtype=torch.long) if chosen is not None and gather else None
    return OpenMMModel(loaded.module, species, subset, meta.cutoff, loaded.dtype, bool(periodic),
                       float(charge), int(spin))


def _species(loaded, topology, atoms, charge: float, spin: int):
    """(species (n,) int64 model element indices, the chosen atom indices or None), checked:
    indices in range and unique, elements known, charge and spin possible."""
    meta = loaded.metadata
    all_atoms = list(topology.atoms())
    chosen = list(atoms) if atoms is not None else None
    if chosen is not None:
        bad = [k for k in chosen if not isinstance(k, (int, np.integer)) or not 0 <= k < len(all_atoms)]
        if bad:
            raise ValueError(f"atoms {bad} are not atom indices of the topology (it has {len(all_atoms)} "
                             f"atoms, indices 0..{len(all_atoms) - 1})")
        if len(set(chosen)) != len(chosen):
            raise ValueError(f"atoms lists an atom twice: {sorted(k for k in set(chosen) if chosen.count(k) > 1)}")
    seen = [all_atoms[k] for k in chosen] if chosen is not None else all_atoms
    if not seen:
        raise ValueError("no atoms selected for the model")
    index = {el: k for k, el in enumerate(meta.elements)}
    symbols = []
    for atom in seen:
        if atom.element is None:
            raise ValueError(f"atom {atom.index} ({atom.name} in residue {atom.residue.name}) has no "
                             "element in the topology; the model needs elements")
        symbols.append(atom.element.symbol)
    unknown = sorted(set(symbols) - index.keys())
    if unknown:
        raise ValueError(f"model {meta.name!r} knows elements {list(meta.elements)}; the selected atoms "
                         f"also contain {unknown}")
    if meta.uses_spin:
        check_charge_spin(sum(atom.element.atomic_number for atom in seen), charge, spin)
    return torch.tensor([index[s] for s in symbols], dtype=torch.long), chosen


def check_whole_system(meta, periodic: bool) -> None:
    """ValueError for a whole-system model (one eigenproblem, ML-EHM) in a periodic system."""
    if meta.whole_system and periodic:
        raise ValueError(f"model {meta.name!r} solves one eigenproblem for the whole molecule and has no "
                         "periodic images: use it in a non-periodic system (a topology without a box, "
                         "or periodic=False)")


def create_embedded_force(model, topology, system, atoms: Iterable[int], charge: float = 0.0,
                          spin: int = 1, force_group: int = 0):
    """Electrostatic embedding of the ML ``atoms`` in ``system``: a TorchForce in which the
    model's charges respond to the potential of the MM point charges (the NonbondedForce's)
    and interact with them (:class:`EmbeddedOpenMMModel`); the ML atoms' charges in the
    NonbondedForce, and in its exceptions, are set to zero so nothing is counted twice
    (their Lennard-Jones terms stay).  Periodic systems use the NonbondedForce's cutoff
    with a shifted-force kernel for the ML-MM term.  Returns the force (not yet added)."""
    import openmm
    import openmmtorch
    from ...model.reductions import supports_groups
    from ...units import COULOMB_EV_A
    from .module import EmbeddedOpenMMModel

    loaded = load_potential(model, "OpenMM")
    if not supports_groups(loaded.module):
        raise ValueError(f"electrostatic embedding needs a model whose charges respond to an external "
                         f"potential (multiscale.model.reductions.GroupReduced, e.g. AIMNet2); "
                         f"{loaded.path} has none: use embedding='mechanical'")
    atoms = [int(a) for a in atoms]
    species, _ = _species(loaded, topology, atoms, charge, spin)
    nonbonded = [f for f in system.getForces() if isinstance(f, openmm.NonbondedForce)]
    if len(nonbonded) != 1:
        raise ValueError(f"electrostatic embedding takes the MM charges from one NonbondedForce; the "
                         f"system has {len(nonbonded)}")
    nb = nonbonded[0]
    ml = set(atoms)
    mm = [k for k in range(system.getNumParticles()) if k not in ml]
    mm_charges = [nb.getParticleParameters(k)[0].value_in_unit(openmm.unit.elementary_charge) for k in mm]
    keep = [k for k, q in enumerate(mm_charges) if q != 0.0]
    periodic = system.usesPeriodicBoundaryConditions()
    check_whole_system(loaded.metadata, periodic)
    mm_cutoff = nb.getCutoffDistance().value_in_unit(openmm.unit.angstrom) if periodic else 0.0
    for k in atoms:
        _, sigma, epsilon = nb.getParticleParameters(k)
        nb.setParticleParameters(k, 0.0, sigma, epsilon)
    for e in range(nb.getNumExceptions()):
        a, b, _, sigma, epsilon = nb.getExceptionParameters(e)
        if a in ml or b in ml:
            nb.setExceptionParameters(e, a, b, 0.0, sigma, epsilon)
    module = EmbeddedOpenMMModel(
        loaded.module, species, torch.tensor(atoms, dtype=torch.long),
        torch.tensor([mm[k] for k in keep], dtype=torch.long),
        torch.tensor([mm_charges[k] for k in keep], dtype=torch.float64), loaded.metadata.cutoff,
        loaded.dtype, bool(periodic), float(charge), int(spin), mm_cutoff, COULOMB_EV_A)
    load_torch_plugins()
    force = openmmtorch.TorchForce(torch.jit.script(module))
    force.setUsesPeriodicBoundaryConditions(bool(periodic))
    force.setForceGroup(force_group)
    return force


def load_torch_plugins() -> None:
    """Make openmm-torch's kernels available even if ``openmm`` was imported before ``torch``.

    ``import openmm`` loads its plugin folder once.  openmm-torch's plugins link against
    libraries that only ``import torch`` puts in the process (with the CUDA torch wheel,
    libnvrtc), so if openmm came first they failed to load and every Context holding a
    TorchForce stops with "does not support all required kernels".  torch is loaded now
    (this module imports it), so load the plugins that failed then; ones that still
    cannot load (OpenCL or CUDA without their runtime) are left out, as OpenMM does.
    """
    global _plugins_checked
    if _plugins_checked:
        return
    import openmm

    for failure in openmm.Platform.getPluginLoadFailures():
        match = re.match(r"Error loading library (.*?libOpenMMTorch\w*\.(?:so|dylib|dll)): ", failure)
        if match:
            try:
                openmm.Platform.loadPluginLibrary(match.group(1))
            except openmm.OpenMMException:
                pass
    _plugins_checked = True


_plugins_checked = False


def create_force(model: str | os.PathLike | multiscale.LoadedModel, topology,
                 atoms: Optional[Iterable[int]] = None, charge: float = 0.0, spin: int = 1,
                 periodic: Optional[bool] = None, force_group: int = 0):
    """An ``openmmtorch.TorchForce`` computing the model's energy (kJ/mol) and forces.

    See :func:`create_module` for the arguments.  With ``periodic`` the force uses
    OpenMM's periodic box vectors (triclinic boxes included).  A compiled ``.pt2`` model gives
    an ``openmm.PythonForce`` instead (:func:`create_python_force`): openmm-torch 1.5 runs only
    TorchScript, and a PythonForce calling the compiled package is the fastest path it leaves.
    """
    import openmmtorch

    loaded = load_potential(model, "OpenMM")
    if loaded.compiled:
        return create_python_force(loaded, topology, atoms, charge, spin, periodic, force_group)
    load_torch_plugins()
    module = create_module(loaded, topology, atoms, charge, spin, periodic)
    force = openmmtorch.TorchForce(module)
    force.setUsesPeriodicBoundaryConditions(module.periodic)
    force.setForceGroup(force_group)
    return force


def create_python_force(model: str | os.PathLike | multiscale.LoadedModel, topology,
                        atoms: Optional[Iterable[int]] = None, charge: float = 0.0, spin: int = 1,
                        periodic: Optional[bool] = None, force_group: int = 0):
    """The computation of :func:`create_force` in an ``openmm.PythonForce``, which OpenMM can copy.

    A System holding an openmm-torch 1.5 TorchForce cannot be copied or deserialized
    under OpenMM 8.6 (the TorchForce deserializer was compiled against OpenMM 8.5's
    ``SerializationNode`` layout and crashes the interpreter); ``copy.deepcopy``,
    ``XmlSerializer.clone`` and openmm-ml's ``interpolate=True`` all do that.  This force
    pickles the scripted module with itself, so those work; each step costs a Python call
    (about 0.7 ms more than the TorchForce on CPU).  Arguments as for :func:`create_force`.
    """
    import openmm

    from .pythonforce import ModelComputation

    loaded = load_potential(model, "OpenMM")
    module = _openmm_model(loaded, topology, atoms, charge, spin, periodic, gather=False)
    periodic = module.periodic
    if not loaded.compiled:   # a .pt2 is compiled already: its OpenMMModel stays in Python
        module = torch.jit.freeze(torch.jit.script(module).eval())
    force = openmm.PythonForce(ModelComputation(module, periodic))
    if atoms is not None:
        force.setParticles(list(atoms))
    force.setUsesPeriodicBoundaryConditions(periodic)
    force.setForceGroup(force_group)
    return force
