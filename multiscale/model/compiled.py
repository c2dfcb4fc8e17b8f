"""Compiled model files (``.pt2``): the model and its backward pass, ahead-of-time compiled.

A ``.pt2`` is a torch.export + AOTInductor package of one function,

    (local_species (n_local,) int64, ghost_species (n_ghost,) int64,
     edge_index (2, E) int64, edge_vectors (E, 3) model dtype)
        -> (energies (m,), dE/d(edge_vectors) (E, 3)[, virials (n_all, 3, 3)])

where ``energies`` are the entries that count (the local atoms', or every entry for
``ghost_energies = "tally"``) and E = their sum.  The number of atoms, ghosts and edges is
dynamic.  The contract's metadata travels in the package (``multiscale.json``), with what
it was compiled for (``multiscale.compiled``: torch version, device, outputs).  Engines
get the same forces and virials from the edge gradient as from a TorchScript file.

Tracing: ``torch.export`` cannot export ``torch.autograd.grad`` with dynamic shapes
(torch 2.9), so ``make_fx`` first traces model and backward together into one graph of
aten operations with symbolic sizes; that graph has no autograd left and exports.  A trace
holds only for the sizes' relations it saw, so :func:`write` checks the compiled package
against the model it came from on systems of other sizes (ghosts or none, a single atom)
before the file is kept.  Models whose energy needs charge, spin, per-system sums or the
whole system are refused with the reason (their inputs do not fit one traced function yet).

Other kinds register their own compiler (:func:`register_compiler`): a crack-field
predictor's package (multiscale.fields.compiled) holds its forward only, called with the
TorchScript module's arguments (:class:`CompiledModule`), and that TorchScript module beside
it (:func:`embedded_torchscript`) for what needs autograd.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from pathlib import Path

import torch

from . import native_ops
from .contract import ModelContractError, ModelMetadata
from .device import DeviceError, resolve as resolve_device

SUFFIX = ".pt2"
METADATA_KEY = "multiscale.json"
COMPILED_KEY = "multiscale.compiled"
FORMAT_VERSION = 1
EXTRA_DIR = "multiscale"            # the package's folder for multiscale's own files
TORCHSCRIPT = "torchscript.pt"      # the TorchScript module a package may carry
DTYPES = {"float64": torch.float64, "float32": torch.float32}


def is_package(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a torch.export / AOTInductor package (a zip whose archive_format is pt2)."""
    try:
        with zipfile.ZipFile(path) as archive:
            marks = [n for n in archive.namelist() if n.endswith("archive_format")]
            return bool(marks) and archive.read(marks[0]).strip() == b"pt2"
    except (zipfile.BadZipFile, OSError):
        return False


def refusal(metadata: ModelMetadata) -> str | None:
    """Why a model with ``metadata`` cannot be compiled to one ``.pt2`` function, or None."""
    if metadata.whole_system:
        return "its energy couples the whole system (an eigenproblem): keep it as TorchScript"
    if metadata.reductions:
        return ("it needs per-system sums mid-forward (reductions), which the engines supply between "
                "stages of the TorchScript file: keep it as TorchScript")
    if metadata.uses_charge or metadata.uses_spin:
        return "it reads the total charge or spin, which a compiled file does not take as inputs yet"
    return None


def _extra_outputs(metadata: ModelMetadata) -> list[str]:
    return ["virials"] if "virials" in metadata.outputs else []


def energy_and_gradient(module: torch.nn.Module, metadata: ModelMetadata):
    """The function a package holds, in Python: runs ``module`` under the contract."""
    tally = metadata.ghost_energies == "tally"
    extra = _extra_outputs(metadata)

    def run(local_species, ghost_species, edge_index, edge_vectors):
        n_local = local_species.shape[0]
        species = torch.cat([local_species, ghost_species])
        vectors = edge_vectors.detach().requires_grad_(True)
        with torch.enable_grad():
            out = module(species, edge_index, vectors, n_local, 0.0, 1)
            energies = out["energies"] if tally else out["energies"][:n_local]
            (grad,) = torch.autograd.grad(energies.sum(), vectors, allow_unused=True)
        if grad is None:
            grad = torch.zeros_like(edge_vectors)
        return (energies.detach(), grad, *[out[key].detach() for key in extra])

    return run


def sample_system(metadata: ModelMetadata, n_local: int, n_ghost: int, seed: int, dtype: torch.dtype,
                  device: torch.device = torch.device("cpu")):
    """A random cluster of ``n_local + n_ghost`` atoms of every element, ~12 neighbours each,
    as an engine gives it on ``device``: (local_species, ghost_species, edge_index, edge_vectors).
    Edges are every pair within the cutoff centred on a local atom (and on ghosts for hops > 1)."""
    generator = torch.Generator().manual_seed(seed)
    n = n_local + n_ghost
    side = metadata.cutoff * (n / 12.0 * 3.0 / (4.0 * math.pi)) ** (1.0 / 3.0) * 1.6
    positions = torch.rand(n, 3, generator=generator, dtype=torch.float64) * max(side, 1e-3)
    species = torch.arange(n) % len(metadata.elements)
    species = species[torch.randperm(n, generator=generator)]
    vectors = positions.unsqueeze(0) - positions.unsqueeze(1)          # [i, j] = r_j - r_i
    r = vectors.norm(dim=2)
    near = (r < metadata.cutoff) & ~torch.eye(n, dtype=torch.bool)
    if metadata.hops == 1:
        near[n_local:] = False
    i, j = torch.nonzero(near, as_tuple=True)
    edge_index = torch.stack([i, j])
    return tuple(t.to(device) for t in (species[:n_local], species[n_local:], edge_index, vectors[i, j].to(dtype)))


def _trace(module: torch.nn.Module, metadata: ModelMetadata, dtype: torch.dtype, device: torch.device):
    from torch.export import Dim, export
    from torch.fx.experimental.proxy_tensor import make_fx

    sample = sample_system(metadata, 9, 5, seed=0, dtype=dtype, device=device)
    try:
        graph = make_fx(energy_and_gradient(module, metadata), tracing_mode="symbolic",
                        _allow_non_fake_inputs=True)(*sample)
    except Exception as exc:
        raise ModelContractError(
            f"model cannot be traced for torch.export: {_first_line(exc)}; every size it branches on must "
            "be a tensor operation (no Python `if` on a data-dependent size); keep it as TorchScript "
            "(.pt) or change the model") from None

    class Traced(torch.nn.Module):
        def __init__(self, graph):
            super().__init__()
            self.graph_module = graph

        def forward(self, local_species, ghost_species, edge_index, edge_vectors):
            return self.graph_module(local_species, ghost_species, edge_index, edge_vectors)

    edges = Dim("edges", min=0)
    shapes = ({0: Dim("local_atoms", min=1)}, {0: Dim("ghost_atoms", min=0)}, {1: edges}, {0: edges})
    try:
        return export(Traced(graph), sample, dynamic_shapes=shapes, strict=False)
    except Exception as exc:
        raise ModelContractError(f"model cannot be exported with dynamic sizes: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# model kind -> its compiler (module, path, metadata, reference, device, log) -> Path; potentials
# are compiled here, crack-field predictors by multiscale.fields.compiled, which registers itself
COMPILERS: dict = {}


def register_compiler(kind: str, compiler) -> None:
    COMPILERS[kind] = compiler


def write(module: torch.nn.Module, path: str | os.PathLike, metadata, reference=None, log=None,
          device: "str | torch.device | None" = None) -> Path:
    """Compile ``module`` (a Python nn.Module under the contract) into the package ``path``.

    reference: what the package must agree with (default ``module`` itself; ``multiscale
    compile`` passes the TorchScript file's module): for potentials, energies and edge
    gradients on four systems of other sizes, to 1e-10 relative in float64 and 1e-5 in
    float32.  log: a callable for progress lines (compiling takes half a minute to a few
    minutes).  device: what the package runs on, "cpu" (default) or "cuda[:N]": compiling for
    a GPU needs one here (AOTInductor generates and tests its kernels on it).
    """
    if Path(path).suffix != SUFFIX:
        raise ModelContractError(f"a compiled model file ends in {SUFFIX}, got {path}")
    kind = getattr(metadata, "kind", "potential")
    if kind not in COMPILERS:
        raise ModelContractError(f"no compiler is registered for model kind {kind!r}; import the module that "
                                 "defines the kind (multiscale.fields for crack-field predictors) first")
    try:
        target = resolve_device(device)
    except DeviceError as exc:
        raise ModelContractError(f"cannot compile {Path(path).name} for that device: {exc}") from None
    return COMPILERS[kind](module, path, metadata, reference, target, log)


def _write_potential(module, path, metadata: ModelMetadata, reference, device: torch.device, log) -> Path:
    say = log or (lambda message: None)
    why = refusal(metadata)
    if why:
        raise ModelContractError(f"model {metadata.name!r} cannot be compiled to {SUFFIX}: {why}")
    dtype = DTYPES[metadata.dtype]
    module = module.to(dtype=dtype, device=device).eval()
    reference = module if reference is None else reference.to(device)
    say(f"tracing {metadata.name} (model and backward, dynamic sizes)")
    program = _trace(module, metadata, dtype, device)
    outputs = ["energies", "edge_gradient", *_extra_outputs(metadata)]
    return package(program, path, metadata, outputs, say,
                   lambda staged: check_agreement(load(staged), reference), device=device)


register_compiler("potential", _write_potential)


def package(program, path, metadata, outputs: list[str], say, check, extra: dict | None = None,
            device: torch.device = torch.device("cpu")) -> Path:
    """AOTInductor-compile the ExportedProgram ``program`` into ``path`` with the metadata inside;
    ``check(staged_path)`` must pass before the file takes its name.  extra: {name: bytes} stored
    in the package's multiscale/ folder (not torch's extra/, whose files torch decodes as text)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    compiled = {"format_version": FORMAT_VERSION, "torch": torch.__version__, "device": device.type,
                "outputs": outputs}
    staged = path.with_name(path.stem + "_checking" + SUFFIX)
    try:
        say(f"compiling with AOTInductor for {'the CPU' if device.type == 'cpu' else 'CUDA'} ({metadata.dtype})")
        torch._inductor.aoti_compile_and_package(
            program, package_path=str(staged),
            inductor_configs={"aot_inductor.metadata": {METADATA_KEY: metadata.to_json(),
                                                        COMPILED_KEY: json.dumps(compiled)}})
        if extra:
            with zipfile.ZipFile(staged, "a") as archive:
                root = archive.namelist()[0].split("/")[0]
                for name, data in extra.items():
                    archive.writestr(f"{root}/{EXTRA_DIR}/{name}", data)
        say("checking the package against the model")
        check(staged)
        staged.replace(path)
    finally:
        staged.unlink(missing_ok=True)
    return path


def embedded_torchscript(path: str | os.PathLike) -> torch.jit.ScriptModule:
    """The TorchScript module a package stores beside its compiled code (crack-field predictors
    do: predictions run compiled, gradients and fine-tuning run the TorchScript module)."""
    with zipfile.ZipFile(path) as archive:
        for entry in archive.namelist():
            if entry.endswith(f"/{EXTRA_DIR}/{TORCHSCRIPT}"):
                return torch.jit.load(io.BytesIO(archive.read(entry)), map_location="cpu")
    raise ModelContractError(f"compiled model {path} holds no TorchScript module; recompile it with "
                             "`multiscale compile`")


def check_close(name: str, got: torch.Tensor, want: torch.Tensor, rtol: float, where: str) -> None:
    """ModelContractError unless ``got`` equals ``want`` to ``rtol`` of want's largest entry."""
    same_shape = got.shape == want.shape
    diff = float((got.to(want.device) - want).abs().max()) if same_shape and want.numel() else 0.0
    scale = max(float(want.abs().max()) if want.numel() else 0.0, 1e-30)
    if not same_shape or diff > rtol * scale:
        raise ModelContractError(
            f"the compiled model's {name} differ from the model's on {where} (shapes {tuple(got.shape)} and "
            f"{tuple(want.shape)}, max difference {diff:.3g}): the trace does not hold for every size; keep "
            "the model as TorchScript")


def check_agreement(package: "CompiledPotential", reference) -> None:
    """ModelContractError unless ``package`` gives ``reference``'s energies and edge gradients."""
    meta = package.metadata
    rtol = 1e-10 if package.dtype == torch.float64 else 1e-5
    expected = energy_and_gradient(reference, meta)
    for k, (n_local, n_ghost) in enumerate([(23, 11), (7, 0), (1, 3), (1, 0)]):
        system = sample_system(meta, n_local, n_ghost, seed=k + 1, dtype=package.dtype, device=package.device)
        for name, got, want in zip(["energies", "edge gradient", "virials"], package.run(*system), expected(*system)):
            check_close(name, got, want, rtol, f"{n_local} local and {n_ghost} ghost atoms")


class CompiledPotential:
    """A loaded ``.pt2``: ``run(local_species, ghost_species, edge_index, edge_vectors)`` gives
    (energies, edge gradient[, virials]); calling it like a TorchScript module (the contract's
    forward) gives ``{"energies": ...}`` whose gradient by the edge vectors is the compiled one."""

    def __init__(self, path: Path, runner, metadata: ModelMetadata, compiled: dict, device: torch.device):
        self.path = path
        self.runner = runner
        self.metadata = metadata
        self.compiled = compiled
        self.device = device
        self.dtype = DTYPES[metadata.dtype]

    def run(self, local_species, ghost_species, edge_index, edge_vectors):
        """The package's outputs, on its device, for inputs on any device."""
        def on(t):
            return t.to(self.device).contiguous()
        return self.runner(on(local_species), on(ghost_species), on(edge_index),
                           on(edge_vectors.detach().to(self.dtype)))

    def on(self, device: torch.device) -> "CompiledPotential":
        """The package loaded for ``device``: a package runs on the kind it was compiled for."""
        return load(self.path, device)

    def __call__(self, species, edge_index, edge_vectors, n_local: int, charge: float = 0.0, spin: int = 1):
        outputs = _CompiledEnergy.apply(self, species, edge_index, edge_vectors, int(n_local))
        result = {"energies": outputs[0]}
        if "virials" in self.compiled["outputs"]:
            result["virials"] = outputs[1]
        return result

    def __getattr__(self, name):   # what a TorchScript module has and a compiled file has not
        if name.startswith("__"):
            raise AttributeError(name)
        raise MissingMethodError(
            f"{self.path} is a compiled {SUFFIX} model: it gives energies, forces and virials in ASE, "
            f"LAMMPS and OpenMM, but has no {name}(); use the TorchScript .pt it was compiled from")


class MissingMethodError(ModelContractError, AttributeError):
    """A TorchScript method a compiled file lacks (an AttributeError, so ``hasattr`` is False)."""


class _CompiledEnergy(torch.autograd.Function):
    """Energies whose backward is the package's own gradient of their sum.  Only the sum (or
    any uniform multiple of it) is differentiable: that is all an engine takes."""

    @staticmethod
    def forward(ctx, package, species, edge_index, edge_vectors, n_local):
        out = package.run(species[:n_local], species[n_local:], edge_index, edge_vectors)
        ctx.save_for_backward(out[1])
        ctx.input_dtype = edge_vectors.dtype
        ctx.input_device = edge_vectors.device
        return (out[0], *out[2:])

    @staticmethod
    def backward(ctx, grad_energies, *grad_rest):
        (grad,) = ctx.saved_tensors
        weight = grad_energies.flatten()
        if weight.numel() and not bool((weight == weight[0]).all()):
            raise RuntimeError("a compiled .pt2 model differentiates only the sum of its energies (what "
                               "engines take); per-atom energy gradients need the TorchScript .pt")
        scale = weight[0] if weight.numel() else grad.new_zeros(())
        return None, None, None, (grad * scale).to(ctx.input_dtype).to(ctx.input_device), None


def _read_package_metadata(path: Path) -> dict[str, str]:
    """The package's AOTInductor metadata without loading its library (checks run before that)."""
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.endswith("_metadata.json"):
                data = json.loads(archive.read(name))
                if METADATA_KEY in data:
                    return data
    return {}


def load(path: str | os.PathLike, device: "str | torch.device | None" = None) -> "CompiledPotential | CompiledModule":
    """Load and check a ``.pt2``: written by multiscale, for this torch, for a device present;
    device: where to run it (default: the device it was compiled for)."""
    from .contract import metadata_from_json

    path = Path(path)
    try:
        stored = _read_package_metadata(path)
    except (zipfile.BadZipFile, OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelContractError(f"compiled model {path} is corrupt ({exc}); recompile it with "
                                 "`multiscale compile`") from None
    if METADATA_KEY not in stored or COMPILED_KEY not in stored:
        raise ModelContractError(f"{path} is a torch.export package but was not written by multiscale "
                                 "(no multiscale.json inside); compile it with `multiscale compile`")
    try:
        metadata = metadata_from_json(stored[METADATA_KEY])
        compiled = json.loads(stored[COMPILED_KEY])
    except (TypeError, ValueError) as exc:
        raise ModelContractError(f"compiled model {path}: {exc}") from None
    if compiled.get("format_version") != FORMAT_VERSION:
        raise ModelContractError(f"compiled model {path} has format version {compiled.get('format_version')}, "
                                 f"this multiscale reads {FORMAT_VERSION}: recompile it with `multiscale compile`")
    if str(compiled.get("torch")).split("+")[0] != torch.__version__.split("+")[0]:
        raise ModelContractError(
            f"compiled model {path} was built with torch {compiled.get('torch')}, this is torch "
            f"{torch.__version__}: a .pt2 runs only under the torch that compiled it; recompile it here "
            "with `multiscale compile` (the .pt it came from works with any)")
    built_for = compiled.get("device", "cpu")
    if device is None:
        device = built_for
    try:
        target = resolve_device(device)
    except DeviceError as exc:
        raise ModelContractError(f"compiled model {path} was compiled for {built_for}: {exc}; or recompile "
                                 "it for the CPU with `multiscale compile` (the default)") from None
    if target.type != built_for.split(":")[0]:
        raise ModelContractError(
            f"compiled model {path} was compiled for {built_for} and cannot run on {target}: a .pt2 runs "
            f"on the kind of device it was compiled for; compile one for {target.type} (`multiscale compile "
            f"--device {target.type}`) or use the TorchScript .pt, which runs on any")
    native_ops.load()
    try:
        runner = torch._inductor.aoti_load_package(str(path), device_index=-1 if target.index is None else target.index)
    except Exception as exc:
        why = native_ops.missing(path, exc)
        if why:
            raise ModelContractError(why) from None
        raise ModelContractError(f"compiled model {path} could not be loaded ({_first_line(exc)}); it is "
                                 "corrupt or from another machine: recompile it with `multiscale compile`") from None
    if getattr(metadata, "kind", "potential") != "potential":
        return CompiledModule(path, runner, metadata, compiled)
    return CompiledPotential(path, runner, metadata, compiled, target)



class CompiledModule:
    """A loaded ``.pt2`` of another kind (a crack-field predictor): called with the TorchScript
    module's arguments, it returns what that forward returns (no autograd)."""

    def __init__(self, path: Path, runner, metadata, compiled: dict):
        self.path, self.runner, self.metadata, self.compiled = path, runner, metadata, compiled
        self.device = torch.device("cpu")   # predictors are compiled for the CPU only

    def __call__(self, *args):
        return self.runner(*[a.contiguous() for a in args])

