"""A potential's silicon material constants, computed once per model file and cached.

:func:`material` gives the lattice constant (Å), the relaxed cubic elastic constants
(GPa) and the relaxed (111) surface energy (J/m^2) that continuum models and crack regions
need.  They depend only on the potential, so they are looked up, in order, in this process,
in the values shipped for the shipped models (``multiscale/data/materials.json``) and in the
user's cache (``$MULTISCALE_CACHE`` or ``~/.cache/multiscale``), and only then computed in
LAMMPS (:mod:`multiscale.reference.properties`, with progress lines) and stored in the cache.
The key is the SHA-256 of the potential's file (Si.sw for ``"sw"``), the procedure's version
and the lattice constant if one was imposed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

PROCEDURE_VERSION = 1     # bump when properties.py computes these differently
SHIPPED = Path(__file__).resolve().parent.parent / "data" / "materials.json"
_MEMORY: dict[str, "Material"] = {}


@dataclass(frozen=True)
class Material:
    """What a continuum model needs of the potential: lattice constant (Å), cubic elastic
    constants (GPa, relaxed) and the relaxed (111) surface energy (J/m^2)."""
    lattice_constant: float
    C11: float
    C12: float
    C44: float
    surface_energy: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @property
    def elastic(self) -> dict[str, float]:
        return {"C11": self.C11, "C12": self.C12, "C44": self.C44}


def cache_dir() -> Path:
    """``$MULTISCALE_CACHE``, else ``$XDG_CACHE_HOME/multiscale``, else ``~/.cache/multiscale``."""
    if os.environ.get("MULTISCALE_CACHE"):
        return Path(os.environ["MULTISCALE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "multiscale"


def potential_file(potential: str | os.PathLike) -> Path:
    """The file that defines ``potential``: LAMMPS' Si.sw for ``"sw"``, else the model file
    (a shipped name or a path)."""
    if str(potential) == "sw":
        from ..paths import SILICON_SW, lammps_potential
        return lammps_potential(SILICON_SW)
    from ..model.registry import resolve
    return resolve(potential)


def cache_key(potential: str | os.PathLike, lattice_constant: float | None = None) -> str:
    digest = hashlib.sha256(potential_file(potential).read_bytes()).hexdigest()
    kind = "sw" if str(potential) == "sw" else "model"
    fixed = "" if lattice_constant is None else f"-a{float(lattice_constant)!r}"
    return f"{kind}-{digest[:32]}-v{PROCEDURE_VERSION}{fixed}"


def _lookup(key: str) -> tuple[Material | None, str]:
    """The cached constants for ``key`` and where they came from."""
    for path, where in ((SHIPPED, "the values shipped with the package"),
                        (cache_dir() / "materials" / f"{key}.json", "the cache")):
        if path.is_file():
            saved = json.loads(path.read_text())
            entry = saved.get(key) if path == SHIPPED else saved
            if entry:
                return Material(**entry), f"{where} ({path})"
    return None, ""


def _store(key: str, mat: Material) -> Path:
    folder = cache_dir() / "materials"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.json"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(mat.as_dict(), indent=1))
    tmp.replace(path)   # atomic: ranks computing at once never read half a file
    return path


def ship(potential: str | os.PathLike, mat: Material) -> Path:
    """Record ``mat`` as the shipped constants of ``potential`` (a model file of the package),
    so that runs with it start without recomputing them; the build commands call this."""
    saved = json.loads(SHIPPED.read_text()) if SHIPPED.is_file() else {}
    saved[cache_key(potential)] = mat.as_dict()
    SHIPPED.write_text(json.dumps(saved, indent=1) + "\n")
    return SHIPPED


def compute(potential: str | os.PathLike, comm=None, lattice_constant: float | None = None,
            log: Callable[[str], None] | None = None) -> Material:
    """The constants computed in LAMMPS on ``comm`` (all its ranks call), without any cache."""
    from ..engines.lammps import pair_lines
    from . import properties
    say = log or (lambda m: print(m, file=sys.stderr, flush=True))
    target = potential if str(potential) == "sw" else potential_file(potential)
    lines, plugin = pair_lines(target)
    name = "native sw" if str(potential) == "sw" else Path(target).name
    t0 = time.perf_counter()
    if lattice_constant is None:
        say(f"material of {name}: lattice constant ...")
        a = properties.lattice_constant(lines, plugin=plugin, comm=comm)
    else:
        a = float(lattice_constant)
    say(f"material of {name}: a = {a:.5f} Å ({time.perf_counter() - t0:.0f} s); elastic constants ...")
    c = properties.elastic_constants(lines, a, plugin=plugin, comm=comm)
    say(f"material of {name}: C11/C12/C44 = {c['C11']:.1f}/{c['C12']:.1f}/{c['C44']:.1f} GPa "
        f"({time.perf_counter() - t0:.0f} s); (111) surface energy ...")
    gamma = properties.surface_energy(lines, a, "111", plugin=plugin, comm=comm)
    say(f"material of {name}: gamma(111) = {gamma:.4f} J/m^2 ({time.perf_counter() - t0:.0f} s)")
    return Material(a, c["C11"], c["C12"], c["C44"], gamma)


def material(potential: str | os.PathLike, comm=None, lattice_constant: float | None = None,
             log: Callable[[str], None] | None = None) -> Material:
    """The constants of ``potential`` ("sw", a shipped name or a model file), from a cache if
    any holds them (logged), else computed on the MPI communicator ``comm`` (default
    MPI_COMM_SELF: this rank alone) and cached for every later run."""
    say = log or (lambda m: print(m, file=sys.stderr, flush=True))
    key = cache_key(potential, lattice_constant)
    if key in _MEMORY:
        return _MEMORY[key]
    mat, where = _lookup(key)
    if mat is None and lattice_constant is not None:   # the equilibrium entry, if it is that lattice
        free, where = _lookup(cache_key(potential))
        free = _MEMORY.get(cache_key(potential)) or free
        mat = free if free is not None and free.lattice_constant == float(lattice_constant) else None
    if mat is not None:
        say(f"material of {potential}: from {where or 'this process'}")
    else:
        if comm is None:
            from mpi4py import MPI
            comm = MPI.COMM_SELF
        mat = compute(potential, comm, lattice_constant, say)
        if comm.Get_rank() == 0:
            say(f"material of {potential}: cached in {_store(key, mat)}")
    _MEMORY[key] = mat
    return mat
