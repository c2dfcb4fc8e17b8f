"""The one place that writes and reads model files.

A model file is a TorchScript archive (``.pt``) whose metadata lives in the extra file
``multiscale.json``, or a compiled torch.export / AOTInductor package (``.pt2``,
multiscale.model.compiled) with the same metadata inside.  Engines (LAMMPS, OpenMM, ASE)
only ever go through :func:`load` here and its C++ twin in the LAMMPS plugin.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import zipfile
from pathlib import Path
from typing import Callable

import torch

from . import compiled, native_ops
from .compiled import DTYPES as _DTYPES
from .contract import METADATA_FILE, FieldMetadata, ModelContractError, ModelMetadata, metadata_from_json
from .device import resolve as resolve_device


@dataclasses.dataclass
class LoadedModel:
    """A validated model: the TorchScript module (or a compiled package, which is called the
    same way) and its metadata."""

    module: torch.jit.ScriptModule
    metadata: ModelMetadata | FieldMetadata
    path: Path
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))

    def to(self, device: "str | torch.device | None") -> "LoadedModel":
        """This model on ``device`` ("cpu", "cuda", "cuda:N"; checked by multiscale.model.device):
        a TorchScript module is copied there (this one stays where it is); a compiled ``.pt2``
        runs only on the kind of device it was compiled for."""
        target = resolve_device(device)
        if target == self.device:
            return self
        if self.compiled:
            module = self.module.on(target)
        else:
            module = copy.deepcopy(self.module).to(target)
        return dataclasses.replace(self, module=module, device=target)

    @property
    def compiled(self) -> bool:
        """Whether the file is a compiled ``.pt2`` (forward and backward in one package)."""
        return isinstance(self.module, (compiled.CompiledPotential, compiled.CompiledModule))

    @property
    def dtype(self) -> torch.dtype:
        return _DTYPES[self.metadata.dtype]


def export(model: torch.nn.Module, path: str | os.PathLike,
           metadata: ModelMetadata | FieldMetadata | None = None,
           check: bool = True, device: str | None = None, native: bool = True) -> Path:
    """Script ``model`` and write it with its metadata to ``path``.

    ``metadata`` defaults to ``model.metadata()`` (every model in multiscale has one).
    With ``check`` the written file is loaded back and run on a two-atom system, so a
    file that an engine would reject is never written silently.  A ``path`` ending in
    ``.pt2`` is compiled instead (torch.export + AOTInductor, multiscale.model.compiled),
    and checked against ``model`` on systems of several sizes, for ``device`` ("cpu", the
    default, or "cuda[:N]" where a GPU is present); a ``.pt`` runs on any device.
    ``native``: parts that have a native operator (the ANI AEV) use it on the CPU (native_ops:
    3x faster, no second derivative); False keeps the torch modules, for a file that is
    trained further with forces in the loss.
    """
    if metadata is None:
        if not hasattr(model, "metadata"):
            raise ModelContractError(
                "export() needs metadata: pass metadata=ModelMetadata(...) or give the model "
                "a metadata() method")
        metadata = model.metadata()
    dtype = _DTYPES[metadata.dtype]
    model = model.to(dtype).eval()
    compiling = Path(path).suffix == compiled.SUFFIX
    if native:
        model = native_ops.fuse(model, scripted=not compiling)
    if compiling:
        return compiled.write(model, path, metadata, device=device)
    try:
        scripted = torch.jit.script(model)
    except Exception as exc:  # TorchScript's own message names the offending line
        raise ModelContractError(f"model cannot be compiled to TorchScript: {exc}") from exc
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not check:
        torch.jit.save(scripted, str(path), _extra_files={METADATA_FILE: metadata.to_json()})
        return path
    kind = kind_of(metadata)
    if kind not in SMOKE_TESTS:
        raise ModelContractError(f"no smoke test is registered for model kind {kind!r}; import the "
                                 "module that defines the kind (e.g. multiscale.fields) before export")
    staged = path.with_name(path.name + ".checking")   # a file that fails its checks is not left behind
    try:
        torch.jit.save(scripted, str(staged), _extra_files={METADATA_FILE: metadata.to_json()})
        try:
            loaded = load(staged)
        except ModelContractError as exc:
            raise ModelContractError(str(exc).replace(str(staged), str(path))) from None
        loaded.path = path
        SMOKE_TESTS[kind](loaded)
        staged.replace(path)
    finally:
        staged.unlink(missing_ok=True)
    return path


def kind_of(metadata: ModelMetadata | FieldMetadata) -> str:
    """"potential" or "field" (a crack-field predictor)."""
    return getattr(metadata, "kind", "potential")


# model kind -> check run on every file export() writes; each kind's module registers its own
# (multiscale.fields registers "field"), so this layer imports none of them
SMOKE_TESTS: dict[str, Callable[["LoadedModel"], None]] = {}


def register_smoke_test(kind: str, check: Callable[["LoadedModel"], None]) -> None:
    SMOKE_TESTS[kind] = check


def load(path: str | os.PathLike, device: "str | torch.device | None" = None) -> LoadedModel:
    """Load and validate a model file (or a shipped model's name, when no such file exists);
    raise ModelContractError saying what is wrong.  device: where to run it (LoadedModel.to);
    default the CPU, or the GPU a compiled file was built for."""
    loaded = _load(path)
    return loaded if device is None else loaded.to(device)


def _load(path: str | os.PathLike) -> LoadedModel:
    path = Path(path)
    if not path.exists():
        from .registry import SHIPPED, model_path
        if str(path) in SHIPPED:
            path = model_path(str(path))      # a missing shipped file: names its build command
    if not path.exists():
        raise ModelContractError(f"model file {path} does not exist")
    if not path.is_file():
        raise ModelContractError(f"model file {path} is not a regular file")
    if compiled.is_package(path):
        package = compiled.load(path)
        return LoadedModel(module=package, metadata=package.metadata, path=path, device=package.device)
    if path.suffix == compiled.SUFFIX:
        raise ModelContractError(f"model file {path} is not a torch.export package (corrupt or wrong file); "
                                 "recompile it with `multiscale compile`")
    if not zipfile.is_zipfile(path):
        raise ModelContractError(
            f"model file {path} is not a TorchScript archive (corrupt or wrong file); "
            "re-export it with multiscale.export()")
    extra = {METADATA_FILE: ""}
    native_ops.load()
    try:
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as exc:
        why = native_ops.missing(path, exc)
        if why:
            raise ModelContractError(why) from None
        raise ModelContractError(f"model file {path} could not be loaded by TorchScript: "
                                 f"{str(exc).splitlines()[0]}") from None
    if not extra[METADATA_FILE]:
        raise ModelContractError(
            f"model file {path} has no {METADATA_FILE} metadata: it is a TorchScript file but "
            "was not written by multiscale.export()")
    try:
        metadata = metadata_from_json(extra[METADATA_FILE])
    except (TypeError, ModelContractError) as exc:
        raise ModelContractError(f"model file {path}: {exc}") from None
    if not hasattr(module, "forward"):
        raise ModelContractError(f"model file {path} has no forward() method")
    if kind_of(metadata) == "potential":
        check_signature(module, str(path))
        if metadata.reductions:
            for method in ("reduction_inputs", "forward_reduced"):
                if not hasattr(module, method):
                    raise ModelContractError(f"model file {path}: model metadata: declares reductions "
                                             f"but has no {method}() method")
    return LoadedModel(module=module, metadata=metadata, path=path)


# forward's arguments after self, as TorchScript types (docs/model_contract.md)
SIGNATURE = (("species", "Tensor"), ("edge_index", "Tensor"), ("edge_vectors", "Tensor"),
             ("n_local", "int"), ("charge", "float"), ("spin", "int"))


def check_signature(module, where: str) -> None:
    """ModelContractError unless ``module.forward`` takes the contract's six arguments."""
    try:
        arguments = module.forward.schema.arguments[1:]
    except AttributeError:   # not a TorchScript method: nothing to read the types from
        return
    got = [str(a.type) for a in arguments]
    if got != [t for _, t in SIGNATURE]:
        have = ", ".join(f"{a.name}: {a.type}" for a in arguments)
        want = ", ".join(f"{n}: {t}" for n, t in SIGNATURE)
        raise ModelContractError(f"{where}: forward({have}) does not take the contract's arguments "
                                 f"forward({want}); see docs/model_contract.md")


def load_potential(model: "str | os.PathLike | LoadedModel", engine: str,
                   device: "str | torch.device | None" = None) -> LoadedModel:
    """An interatomic potential for ``engine``: a LoadedModel, a model file or a shipped model's
    name (``multiscale models``), on ``device`` (LoadedModel.to; None keeps the model's own);
    a crack-field predictor is refused by name."""
    from .registry import resolve
    loaded = model if isinstance(model, LoadedModel) else load(resolve(model))
    if device is not None:
        loaded = loaded.to(device)
    if kind_of(loaded.metadata) != "potential":
        raise ModelContractError(f"{loaded.path} is a crack-field predictor, not an interatomic potential: "
                                 f"{engine} runs potentials; use multiscale.fields.FieldPredictor for it")
    return loaded


def smoke_test(model: LoadedModel) -> None:
    """Run the model on a dimer and check the outputs' names, shapes and dtypes."""
    dtype = model.dtype
    species = torch.zeros(2, dtype=torch.long)
    edge_index = torch.tensor([[0, 1], [1, 0]])
    r = 0.6 * model.metadata.cutoff
    edge_vectors = torch.tensor([[r, 0.0, 0.0], [-r, 0.0, 0.0]], dtype=dtype, requires_grad=True)
    try:
        out = model.module(species, edge_index, edge_vectors, 2, 0.0, 1)
    except Exception as exc:
        raise ModelContractError(
            f"model {model.path} fails on a dimer; forward must accept (species, edge_index, "
            f"edge_vectors, n_local, charge, spin): {str(exc).splitlines()[0]}") from None
    check_outputs(out, n_all=2, n_local=2, dtype=dtype, where=str(model.path))
    if model.metadata.reductions:
        check_stages(model, (species, edge_index, edge_vectors, 2, 0.0, 1), out)
    if model.metadata.ghost_energies != "tally" and not model.metadata.whole_system:
        reach = receptive_field(model)
        if reach > model.metadata.hops:
            raise ModelContractError(
                f"model {model.path}: an atom's energy depends on atoms {reach} hops away, but the metadata "
                f"says hops = {model.metadata.hops}; an engine would give it too thin a ghost shell "
                f"(wrong energies on several ranks): export it with hops = {reach}")


def staged_sums(model: LoadedModel, args: tuple) -> list[torch.Tensor]:
    """Each stage's sums over the local atoms of ``args`` (species, edge_index, edge_vectors,
    n_local, charge, spin), as an engine holding every atom computes them."""
    sums: list[torch.Tensor] = []
    for stage, width in enumerate(model.metadata.reductions):
        x = model.module.reduction_inputs(stage, *args, sums)
        if tuple(x.shape) != (args[3], width):
            raise ModelContractError(f"model {model.path}: reduction_inputs at stage {stage} has shape "
                                     f"{tuple(x.shape)}, expected ({args[3]}, {width})")
        sums.append(x.sum(0))
    return sums


def check_stages(model: LoadedModel, args: tuple, out: dict) -> None:
    """The staged path (reduction_inputs, then forward_reduced) must give what forward gives."""
    staged = model.module.forward_reduced(*args, staged_sums(model, args))
    for key, value in out.items():
        if key not in staged or not torch.allclose(staged[key], value, rtol=1e-6, atol=1e-9):
            raise ModelContractError(f"model {model.path}: forward_reduced with the staged sums does not "
                                     f"give forward's {key!r}; forward must run the stages itself "
                                     "(multiscale.model.reductions.Reduced does)")


def receptive_field(model: LoadedModel) -> int:
    """How many hops away atom 0's energy still feels an atom, measured on a zigzag chain of
    ``hops + 3`` atoms whose neighbours within the cutoff are only the adjacent ones (bonds
    0.8 cutoff, 150 degrees).  Models that tally terms onto neighbours (``ghost_energies =
    "tally"``) attribute energy across hops by design and are not measured."""
    n = model.metadata.hops + 3
    bond = 0.8 * model.metadata.cutoff
    half = math.radians(75.0)
    positions = torch.tensor([[k * bond * math.sin(half), (k % 2) * bond * math.cos(half), 0.0]
                              for k in range(n)], dtype=torch.float64)
    pairs = [(i, i + 1) for i in range(n - 1)]
    edge_index = torch.tensor([[i for i, j in pairs] + [j for i, j in pairs],
                               [j for i, j in pairs] + [i for i, j in pairs]])
    vectors = (positions[edge_index[1]] - positions[edge_index[0]]).to(model.dtype).requires_grad_(True)
    args = (torch.zeros(n, dtype=torch.long), edge_index, vectors, n, 0.0, 1)
    if model.metadata.reductions:   # the per-system sums reach every atom by design: held fixed
        out = model.module.forward_reduced(*args, [s.detach() for s in staged_sums(model, args)])
    else:
        out = model.module(*args)
    (grad,) = torch.autograd.grad(out["energies"][0], vectors, allow_unused=True)
    if grad is None:
        return 0
    felt = [k for k in range(n) if bool((grad[edge_index[0] == k].abs().sum() + grad[edge_index[1] == k].abs().sum()) > 0)]
    return max(felt, default=0)


register_smoke_test("potential", smoke_test)


def check_outputs(out, n_all: int, n_local: int, dtype: torch.dtype, where: str = "model") -> None:
    if not isinstance(out, dict) or "energies" not in out:
        raise ModelContractError(f"{where}: forward must return a dict with key 'energies'")
    e = out["energies"]
    if e.dim() != 1 or e.shape[0] not in (n_all, n_local):
        raise ModelContractError(
            f"{where}: 'energies' has shape {tuple(e.shape)}, expected ({n_all},) or ({n_local},)")
    if e.dtype != dtype:
        raise ModelContractError(f"{where}: 'energies' is {e.dtype}, metadata says {dtype}")
    if "charges" in out and (out["charges"].dim() != 1 or out["charges"].shape[0] not in (n_all, n_local)):
        raise ModelContractError(
            f"{where}: 'charges' has shape {tuple(out['charges'].shape)}, expected ({n_all},) or ({n_local},)")
    if "virials" in out and tuple(out["virials"].shape) != (n_all, 3, 3):
        raise ModelContractError(
            f"{where}: 'virials' has shape {tuple(out['virials'].shape)}, expected ({n_all}, 3, 3)")
