"""ASE calculator for any exported multiscale model."""

from __future__ import annotations

import os

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from . import neighbors
from ..model.artifact import LoadedModel, load_potential
from ..model.contract import check_charge_spin
from .scatter import evaluate


class MultiscaleCalculator(Calculator):
    """Energy (eV), forces (eV/Å), stress (eV/Å^3), per-atom energies and stresses.

    model: a model file path, a shipped model's name (``multiscale models``) or a LoadedModel.
    The parameters ``charge`` (e) and ``spin`` (multiplicity) are passed to models that use
    them; ``calc.set(charge=...)`` clears the results as for any ASE parameter, and
    ``atoms.info["charge"]`` / ``["spin"]`` override them per structure.  ``electric_field``
    (3,) V/Å applies a uniform field to a molecule (potential -E.r about the origin, energy
    - mu.E, tblite's convention; ``atoms.info["electric_field"]`` overrides it) for models whose
    charges respond to an external potential.  ``get_magnetic_moments()`` gives the spin
    charges (alpha - beta, e) of an open-shell model.  An attention model's ``attention``
    (n_edges, layers, heads) comes with ``edge_index`` (2, n_edges) and ``edge_vectors``
    (n_edges, 3) Å, the edges it refers to (centre i attending to neighbour j).  A model with
    a Hamiltonian (ML-EHM) gives ``orbital_energies`` (eV, ascending) and Mulliken ``charges``;
    such whole-system models run on non-periodic molecules only.  ``device``: where the model
    runs, "cpu" (default), "cuda" or "cuda:N"; a GPU that is not there is an error.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress", "stresses",
                              "charges", "magmoms", "attention", "orbital_energies"]
    default_parameters = {"charge": 0.0, "spin": 1, "electric_field": None}
    discard_results_on_any_change = True   # charge, spin and field change the energy

    def __init__(self, model: str | os.PathLike | LoadedModel, charge: float = 0.0, spin: int = 1,
                 electric_field=None, device: str | None = None, **kwargs):
        super().__init__(charge=charge, spin=spin, electric_field=electric_field, **kwargs)
        self.model = load_potential(model, "the ASE calculator", device=device)

    STATE_KEYS = ("charge", "spin", "electric_field")   # atoms.info entries that change the results

    def check_state(self, atoms, tol=1e-15):
        """ASE's checks, and ``atoms.info["charge"/"spin"/"electric_field"]``, which ASE does
        not compare: without this a cached result would be returned for another charge."""
        changes = super().check_state(atoms, tol)
        if self.atoms is not None:
            for key in self.STATE_KEYS:
                old, new = self.atoms.info.get(key), atoms.info.get(key)
                if (old is None) != (new is None) or (old is not None and not np.array_equal(old, new)):
                    changes.append(key)
        return changes

    def species_of(self, atoms) -> torch.Tensor:
        elements = self.model.metadata.elements
        index = {el: k for k, el in enumerate(elements)}
        unknown = sorted(set(atoms.get_chemical_symbols()) - index.keys())
        if unknown:
            raise ValueError(f"model {self.model.metadata.name!r} knows elements {list(elements)}, "
                             f"not {unknown}")
        return torch.tensor([index[s] for s in atoms.get_chemical_symbols()], dtype=torch.long)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        species = self.species_of(atoms)
        charge = atoms.info.get("charge", self.parameters.charge)
        spin = atoms.info.get("spin", self.parameters.spin)
        if self.model.metadata.uses_spin:
            check_charge_spin(int(atoms.get_atomic_numbers().sum()), charge, spin)
        if self.model.metadata.whole_system and atoms.pbc.any():
            raise ValueError(f"model {self.model.metadata.name!r} solves one eigenproblem for the whole "
                             f"system and runs on molecules only; this structure is periodic along "
                             f"{list(atoms.pbc)}: set atoms.pbc = False (with vacuum around the molecule)")
        edge_index, edge_vectors = neighbors.edges(atoms.positions, atoms.cell.array, atoms.pbc,
                                                   self.model.metadata.cutoff)
        field = atoms.info.get("electric_field", self.parameters.electric_field)
        potential = None
        if field is not None:
            field = np.asarray(field, dtype=float).reshape(3)
            if atoms.pbc.any():
                raise ValueError("electric_field: a uniform field is applied to molecules only; this "
                                 f"structure is periodic along {list(atoms.pbc)}")
            potential = -torch.tensor(atoms.positions @ field)
        res = evaluate(self.model, species, edge_index, edge_vectors, len(atoms), charge=charge, spin=spin,
                       potential=potential, per_atom_virials="stresses" in properties)
        if potential is not None:
            res.forces += res.potential_grad.unsqueeze(1) * torch.tensor(field)
        self.results["energy"] = self.results["free_energy"] = res.energy
        self.results["energies"] = res.energies.numpy()
        self.results["forces"] = res.forces.numpy()
        if res.charges is not None:
            self.results["charges"] = res.charges.numpy()
        if res.orbital_energies is not None:
            self.results["orbital_energies"] = res.orbital_energies.numpy()
        if res.spin_charges is not None:
            self.results["magmoms"] = res.spin_charges.numpy()
        if res.attention is not None:
            self.results["attention"] = res.attention.numpy()
            self.results["edge_index"] = edge_index.numpy()
            self.results["edge_vectors"] = edge_vectors.numpy()
        if atoms.cell.rank == 3 and atoms.pbc.all():
            volume = atoms.get_volume()
            # stress = (1/V) dE/d(strain) = -W/V; symmetrised as ASE expects
            stress = -0.5 * (res.virial + res.virial.T).numpy() / volume
            self.results["stress"] = full_3x3_to_voigt_6_stress(stress)
            if "stresses" in properties:
                per_atom = -0.5 * (res.virials + res.virials.transpose(1, 2)).numpy() / volume
                self.results["stresses"] = full_3x3_to_voigt_6_stress(per_atom)
