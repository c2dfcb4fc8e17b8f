"""One table of model files with bad metadata, run against every loader (``multiscale.load``
and the LAMMPS plugin): each case mutates the metadata of a valid file and names the phrase
that both loaders' errors must contain.  The cases in POTENTIAL_ENGINES_ONLY are valid files
of another kind, which ``multiscale.load`` accepts; the engines for potentials (the ASE
calculator on the Python side) refuse them."""

from __future__ import annotations

import json
from pathlib import Path

import torch

METADATA_FILE = "multiscale.json"


def _drop(key):
    return lambda d: {k: v for k, v in d.items() if k != key}


def _set(key, value):
    return lambda d: {**d, key: value}


# valid metadata of a crack-field predictor (multiscale.model.contract.FieldMetadata)
FIELD_METADATA = {"format": "multiscale-model", "kind": "field", "name": "crack-fields-test",
                  "scaling": "lefm", "inputs": {"token_features": 8, "n_tokens": 16,
                                                "global_features": 4, "max_tips": 2}}


# name -> (mutation of the metadata dict, or a str: the whole metadata text; phrase for
# multiscale.load, phrase for pair_style multiscale)
CASES = {
    "not JSON": ("{not json", "is not valid JSON", "is not valid JSON"),
    "wrong format": (_set("format", "other"), "does not declare format 'multiscale-model'",
                     "does not declare format 'multiscale-model'"),
    "no name": (_drop("name"), "lacks required field(s) ['name']", "lacks required field(s) ['name']"),
    "no elements": (_drop("elements"), "lacks required field(s) ['elements']",
                    "lacks required field(s) ['elements']"),
    "no cutoff": (_drop("cutoff"), "lacks required field(s) ['cutoff']", "lacks required field(s) ['cutoff']"),
    "unknown field": (_set("temperature", 300), "has unknown field(s) ['temperature']",
                      "has unknown field(s) ['temperature']"),
    "contract version": (_set("contract_version", 99), "contract_version 99 is not supported",
                         "contract_version 99 is not supported"),
    "reductions not a list": (_set("reductions", 3), "reductions must be a list of widths, got 3",
                              "reductions must be a list of widths, got 3"),
    "zero-width reduction": (lambda d: {**d, "reductions": [0], "contract_version": 2},
                             "reductions must be positive integers, got [0]",
                             "reductions must be positive integers, got [0]"),
    "reductions in version 1": (lambda d: {**d, "reductions": [2], "contract_version": 1},
                                "declares reductions but contract_version 1",
                                "declares reductions but contract_version 1"),
    "reductions without methods": (lambda d: {**d, "reductions": [2], "contract_version": 2},
                                   "declares reductions but has no reduction_inputs() method",
                                   "declares reductions but has no reduction_inputs() method"),
    "empty name": (_set("name", ""), "name must be a non-empty string", "name must be a non-empty string"),
    "no elements listed": (_set("elements", []), "elements must list at least one chemical symbol",
                           "elements must list at least one chemical symbol"),
    "not a symbol": (_set("elements", ["Xx"]), "element 'Xx' is not a chemical symbol",
                     "element 'Xx' is not a chemical symbol"),
    "duplicate elements": (_set("elements", ["Ar", "Ar"]), "elements ['Ar', 'Ar'] contain duplicates",
                           "elements ['Ar', 'Ar'] contain duplicates"),
    "negative cutoff": (_set("cutoff", -1.0), "cutoff must be a positive number of Å, got -1.0",
                        "cutoff must be a positive number of Å, got -1.0"),
    "zero cutoff": (_set("cutoff", 0), "cutoff must be a positive number of Å, got 0",
                    "cutoff must be a positive number of Å, got 0"),
    "cutoff not a number": (_set("cutoff", "far"), "cutoff must be a positive number of Å, got 'far'",
                            "cutoff must be a positive number of Å, got 'far'"),
    "zero hops": (_set("hops", 0), "hops must be an integer >= 1, got 0", "hops must be an integer >= 1, got 0"),
    "fractional hops": (_set("hops", 1.5), "hops must be an integer >= 1, got 1.5",
                        "hops must be an integer >= 1, got 1.5"),
    "unknown dtype": (_set("dtype", "float16"), "dtype must be one of ('float64', 'float32'), got 'float16'",
                      "dtype must be one of ('float64', 'float32'), got 'float16'"),
    "no energies output": (_set("outputs", ["virials"]), "outputs must include 'energies'",
                           "outputs must include 'energies'"),
    "unknown output": (_set("outputs", ["energies", "dipoles"]),
                       "unknown outputs ['dipoles']; known: ('energies', 'virials', 'charges', 'spin_charges', 'attention', 'orbital_energies')",
                       "unknown outputs ['dipoles']; known: ('energies', 'virials', 'charges', 'spin_charges', 'attention', 'orbital_energies')"),
    "ghost energies rule": (_set("ghost_energies", "half"),
                            "ghost_energies must be one of ('ignore', 'tally'), got 'half'",
                            "ghost_energies must be one of ('ignore', 'tally'), got 'half'"),
    "field predictor": (lambda d: FIELD_METADATA, "is a crack-field predictor, not an interatomic potential",
                        "is a crack-field predictor, not an interatomic potential"),
}

# valid files that multiscale.load accepts, but not as a potential
POTENTIAL_ENGINES_ONLY = {"field predictor"}


def write_case(valid: Path, name: str, folder: Path) -> Path:
    """A copy of the valid model file ``valid`` with the metadata of case ``name``."""
    mutation = CASES[name][0]
    extra = {METADATA_FILE: ""}
    module = torch.jit.load(str(valid), _extra_files=extra)
    text = mutation if isinstance(mutation, str) else json.dumps(mutation(json.loads(extra[METADATA_FILE])))
    path = folder / (name.replace(" ", "_") + ".pt")
    torch.jit.save(module, str(path), _extra_files={METADATA_FILE: text})
    return path
