"""The model contract: what every exported model file carries and promises.

A model is a TorchScript module with

    forward(species, edge_index, edge_vectors, n_local, charge, spin) -> Dict[str, Tensor]

    species:      (n_all,) int64, index into ``metadata.elements``; local atoms first
    edge_index:   (2, n_edges) int64, row 0 the centre atom i, row 1 the neighbour j
    edge_vectors: (n_edges, 3) model dtype, r_j - r_i in Å
    n_local:      int, atoms [0, n_local) are local; only their terms count
    charge:       float, total charge in e
    spin:         int, spin multiplicity 2S+1

and returns ``{"energies": (n_all,) or (n_local,) eV, ...}``.  A model whose energy needs
per-system sums (charges normalised to the total charge) declares ``reductions`` and
exports ``reduction_inputs`` and ``forward_reduced`` (contract version 2, see
multiscale.model.reductions); engines then supply the sums over every local atom of the
system, on any number of ranks.  Which entries count is the
metadata's ``ghost_energies``: ``"ignore"`` (the default): the energy is the sum over the
local atoms' entries and whatever a model returns for ghosts is ignored; ``"tally"``: the
ghosts' entries are shares of local atoms' terms (three-body energies split in thirds, as
LAMMPS tallies them with newton on) and every entry counts.  Optional outputs are
``"virials"`` (n_all, 3, 3) eV with the model's own per-atom attribution
(W[a, b] = sum r_a F_b), ``"charges"`` (n_all,) e and ``"spin_charges"`` (n_all,) e,
alpha minus beta populations, and ``"attention"`` (n_edges, layers, heads), the weight of
each edge in each attention layer and head, and ``"orbital_energies"`` (m,) eV ascending, the
levels of a model's Hamiltonian (engines that have no use for one ignore it).  A model whose
energy couples every atom (an eigenproblem: ML-EHM) says ``whole_system``: engines hand it
the whole non-periodic system, every atom local, and refuse periodic boxes and several ranks.  Engines take forces and
virials from d(sum energies)/d(edge_vectors).  See docs/model_contract.md.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

CONTRACT_VERSION = 2          # the newest this multiscale reads and writes
SUPPORTED_VERSIONS = (1, 2)   # 2 adds reductions; files without them are written as 1
METADATA_FILE = "multiscale.json"  # TorchScript extra file that holds the metadata
DTYPES = ("float64", "float32")
KNOWN_OUTPUTS = ("energies", "virials", "charges", "spin_charges", "attention", "orbital_energies")
GHOST_ENERGIES = ("ignore", "tally")


class ModelContractError(ValueError):
    """A model file or model metadata does not satisfy the contract."""


@dataclasses.dataclass(frozen=True)
class ModelMetadata:
    """Metadata stored inside every exported model file.

    elements: chemical symbols; ``species`` indexes this list
    cutoff:   neighbour cutoff in Å (edges are given for every pair closer than this)
    hops:     message-passing depth; an engine needs a ghost shell of hops * cutoff
    dtype:    "float64" or "float32", the dtype of edge_vectors and energies
    ghost_energies: "ignore" (only local atoms' energies count) or "tally" (ghost entries are
              shares of local terms and count too); files written before the field was
              introduced read as "tally", how engines summed them then
    reductions: widths of the per-system sums the model needs, one per stage (contract
              version 2, multiscale.model.reductions); () for none
    contract_version: 0 picks the lowest that holds the file: 2 with reductions, else 1
    whole_system: the energy couples every atom (no locality, hops is the network's depth
              only): engines pass one whole, non-periodic system on one rank, or refuse
    """

    name: str
    elements: tuple[str, ...]
    cutoff: float
    hops: int = 1
    dtype: str = "float64"
    version: str = "0"
    citation: str = ""
    description: str = ""
    outputs: tuple[str, ...] = ("energies",)
    uses_charge: bool = False
    uses_spin: bool = False
    ghost_energies: str = "ignore"
    reductions: tuple[int, ...] = ()
    contract_version: int = 0
    whole_system: bool = False

    def __post_init__(self):
        object.__setattr__(self, "elements", tuple(self.elements))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        if isinstance(self.reductions, (list, tuple)):
            object.__setattr__(self, "reductions", tuple(self.reductions))
        if self.contract_version == 0:
            object.__setattr__(self, "contract_version", 2 if self.reductions else 1)
        validate(self)

    def to_json(self) -> str:
        d = dataclasses.asdict(self)
        d["format"] = "multiscale-model"
        d["units"] = {"length": "angstrom", "energy": "eV", "charge": "e"}
        return json.dumps(d, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelMetadata":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelContractError(f"model metadata is not valid JSON ({exc})") from None
        if not isinstance(d, dict) or d.get("format") != "multiscale-model":
            raise ModelContractError(
                "model metadata does not declare format 'multiscale-model'; "
                "export the model with multiscale.export()")
        d.pop("format")
        d.pop("units", None)
        fields = {f.name for f in dataclasses.fields(cls)}
        required = {"name", "elements", "cutoff"}
        missing = sorted(required - d.keys())
        if missing:
            raise ModelContractError(f"model metadata lacks required field(s) {missing}")
        unknown = sorted(d.keys() - fields)
        if unknown:
            raise ModelContractError(f"model metadata has unknown field(s) {unknown}")
        d.setdefault("ghost_energies", "tally")   # files from before the field: every entry counted
        return cls(**d)


def validate(meta: ModelMetadata) -> None:
    """Raise ModelContractError naming the first problem in ``meta``."""

    def bad(msg: str):
        raise ModelContractError(f"model metadata: {msg}")

    if meta.contract_version not in SUPPORTED_VERSIONS:
        bad(f"contract_version {meta.contract_version} is not supported "
            f"(this multiscale reads versions {SUPPORTED_VERSIONS[0]} to {SUPPORTED_VERSIONS[-1]}); "
            "update multiscale or re-export the model")
    if not isinstance(meta.name, str) or not meta.name:
        bad("name must be a non-empty string")
    if not meta.elements:
        bad("elements must list at least one chemical symbol")
    from ase.data import atomic_numbers
    for el in meta.elements:
        if el not in atomic_numbers or el == "X":   # "X" is ASE's dummy atom, not an element
            bad(f"element {el!r} is not a chemical symbol")
    if len(set(meta.elements)) != len(meta.elements):
        bad(f"elements {list(meta.elements)} contain duplicates")
    if not isinstance(meta.cutoff, (int, float)) or not math.isfinite(meta.cutoff) or meta.cutoff <= 0:
        bad(f"cutoff must be a positive number of Å, got {meta.cutoff!r}")
    if not isinstance(meta.hops, int) or meta.hops < 1:
        bad(f"hops must be an integer >= 1, got {meta.hops!r}")
    if meta.dtype not in DTYPES:
        bad(f"dtype must be one of {DTYPES}, got {meta.dtype!r}")
    if "energies" not in meta.outputs:
        bad("outputs must include 'energies'")
    if meta.ghost_energies not in GHOST_ENERGIES:
        bad(f"ghost_energies must be one of {GHOST_ENERGIES}, got {meta.ghost_energies!r}")
    unknown = [o for o in meta.outputs if o not in KNOWN_OUTPUTS]
    if unknown:
        bad(f"unknown outputs {unknown}; known: {KNOWN_OUTPUTS}")
    if not isinstance(meta.reductions, tuple):
        bad(f"reductions must be a list of widths, got {meta.reductions!r}")
    if any(not isinstance(w, int) or isinstance(w, bool) or w < 1 for w in meta.reductions):
        bad(f"reductions must be positive integers, got {list(meta.reductions)!r}")
    if meta.reductions and meta.contract_version < 2:
        bad("declares reductions but contract_version 1; re-export the model")


def check_charge_spin(nuclear_charge: int, charge: float, spin: int) -> None:
    """ValueError unless total charge ``charge`` (e) and spin multiplicity ``spin`` (2S+1) fit
    the electron count Z_total - Q: an even count needs an odd multiplicity, an odd count an
    even one, and 2S cannot exceed the count.  Non-integer charges are not checked."""
    if spin < 1:
        raise ValueError(f"spin multiplicity must be >= 1 (2S+1), got {spin}")
    if abs(charge - round(charge)) > 1e-9:
        return
    electrons = int(nuclear_charge) - int(round(charge))
    if electrons < 0 or (electrons - (spin - 1)) % 2 != 0 or spin - 1 > electrons:
        raise ValueError(
            f"charge {charge:g} and spin multiplicity {spin} are impossible for {electrons} electrons: "
            f"an even number of electrons needs an odd multiplicity (1 singlet, 3 triplet, ...), an odd "
            f"number an even one (2 doublet, 4 quartet, ...), at most electrons + 1")


FIELD_OUTPUTS = ("displacements", "stresses", "k")


@dataclasses.dataclass(frozen=True)
class FieldMetadata:
    """Metadata of a crack-field predictor file (``kind = "field"``, see docs/fields.md).

    Its forward takes non-dimensional specimen tokens and query points and returns
    non-dimensional displacements, stresses and stress intensity factors; ``scaling`` says
    how they map to physical units and ``inputs`` fixes the token layout the file expects.
    """

    name: str
    inputs: dict
    scaling: str
    kind: str = "field"
    dtype: str = "float32"
    version: str = "0"
    citation: str = ""
    description: str = ""
    outputs: tuple[str, ...] = FIELD_OUTPUTS
    architecture: dict = dataclasses.field(default_factory=dict)
    training: dict = dataclasses.field(default_factory=dict)
    contract_version: int = 1

    def __post_init__(self):
        object.__setattr__(self, "outputs", tuple(self.outputs))

        def bad(msg: str):
            raise ModelContractError(f"field model metadata: {msg}")

        if self.kind != "field":
            bad(f"kind must be 'field', got {self.kind!r}")
        if self.contract_version not in SUPPORTED_VERSIONS:
            bad(f"contract_version {self.contract_version} is not supported; re-export the model")
        if not isinstance(self.name, str) or not self.name:
            bad("name must be a non-empty string")
        if self.dtype not in DTYPES:
            bad(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if set(self.outputs) != set(FIELD_OUTPUTS):
            bad(f"outputs must be {FIELD_OUTPUTS}, got {self.outputs}")
        missing = sorted({"token_features", "n_tokens", "global_features", "max_tips"} - set(self.inputs))
        if missing:
            bad(f"inputs lacks {missing}")

    def to_json(self) -> str:
        d = dataclasses.asdict(self)
        d["format"] = "multiscale-model"
        return json.dumps(d, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "FieldMetadata":
        d = json.loads(text)
        d.pop("format", None)
        missing = sorted({"name", "inputs", "scaling"} - d.keys())
        if missing:
            raise ModelContractError(f"field model metadata lacks required field(s) {missing}")
        unknown = sorted(d.keys() - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ModelContractError(f"field model metadata has unknown field(s) {unknown}")
        return cls(**d)


def metadata_from_json(text: str) -> "ModelMetadata | FieldMetadata":
    """Parse a file's metadata: a field predictor if it says ``kind: "field"``, else a potential."""
    try:
        d = json.loads(text)
    except json.JSONDecodeError:
        d = None
    if isinstance(d, dict) and d.get("format") == "multiscale-model" and d.get("kind") == "field":
        return FieldMetadata.from_json(text)
    return ModelMetadata.from_json(text)


def as_dict(meta: ModelMetadata) -> dict[str, Any]:
    return json.loads(meta.to_json())
