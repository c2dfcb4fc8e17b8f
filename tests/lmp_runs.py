"""Run LAMMPS input scripts through ``mpiexec -n N multiscale lmp`` and read what they wrote."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

BIN = Path(sys.executable).parent

# per-atom output every test run writes: forces, per-atom energy, per-atom stress (-W_i, bar Å^3)
DUMP = ["compute pe all pe/atom", "compute st all stress/atom NULL",
        "dump d all custom 1 atoms.txt x y z fx fy fz c_pe c_st[1] c_st[2] c_st[3] c_st[4] c_st[5] c_st[6]",
        "dump_modify d sort id format float %.17g"]
THERMO = ['print "$(pe:%.17g) $(pxx:%.17g) $(pyy:%.17g) $(pzz:%.17g) $(pxy:%.17g) $(pxz:%.17g) '
          '$(pyz:%.17g)" file thermo.txt screen no']


def skewed_cell(model: str, elements: str, size: int = 3) -> str:
    """A LAMMPS input: a triclinic diamond cell of two types (30 % type 2), atoms displaced
    0.1 Å at random, ``pair_style multiscale MODEL`` (MODEL may carry keywords), one force call
    with the per-atom dump and thermo line that :func:`read` takes."""
    return "\n".join([
        "units metal", "atom_style atomic", "atom_modify map array", "lattice diamond 5.431",
        f"region box prism 0 {size} 0 {size} 0 {size} 0.4 -0.3 0.2", "create_box 2 box", "create_atoms 1 box",
        "set type 1 type/fraction 2 0.3 4567", "mass * 28.0", "displace_atoms all random 0.1 0.1 0.1 99 units box",
        f"pair_style multiscale {model}", f"pair_coeff * * {elements}", *DUMP, "run 0", *THERMO]) + "\n"


def run(script: str, workdir: Path, ranks: int = 1, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``script`` with ``ranks`` MPI ranks in ``workdir``; return the finished process."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "in.lmp").write_text(script)
    mpiexec = shutil.which("mpiexec", path=str(BIN)) or "mpiexec"
    cmd = [mpiexec, "-n", str(ranks), str(BIN / "multiscale"), "lmp", "-in", "in.lmp",
           "-log", "log.lammps", "-nocite"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)


def run_ok(script: str, workdir: Path, ranks: int = 1) -> dict:
    proc = run(script, workdir, ranks)
    assert proc.returncode == 0, f"LAMMPS failed on {ranks} ranks:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return read(workdir)


def read(workdir: Path) -> dict:
    thermo = np.loadtxt(workdir / "thermo.txt", ndmin=2)[-1]
    lines = (workdir / "atoms.txt").read_text().splitlines()
    n = int(lines[3])
    atoms = np.array([[float(v) for v in line.split()] for line in lines[9:9 + n]])
    # create_atoms numbers atoms by rank, so match atoms across runs by position
    key = np.round(atoms[:, :3], 4)
    atoms = atoms[np.lexsort(key.T[::-1])]
    return {"pe": thermo[0], "pressure": thermo[1:7], "forces": atoms[:, 3:6],
            "energies": atoms[:, 6], "stresses": atoms[:, 7:13]}


def relative(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))
