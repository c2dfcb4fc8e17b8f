"""Run every benchmark in this folder, one after another; results go to benchmarks/results/.

    .venv/bin/python benchmarks/run_all.py [--quick]

Each benchmark takes its ratios within its own run (the machine is noisy); running them one
after another keeps them from competing for the two cores.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["lammps_plugin.py", "ani_inference.py", "openmm_force.py", "training.py", "fem_solve.py",
              "coupling.py", "field_predictor.py", "charged_models.py", "attention_models.py", "huckel.py", "compiled.py",
              "md_coupling.py", "schwarz.py"]
QUICK = {"lammps_plugin.py": ["--quick"], "ani_inference.py": ["--quick"],
         "openmm_force.py": ["--steps", "10"], "training.py": ["--quick"],
         "fem_solve.py": ["--quick", "--figure", str(HERE / "results" / "quick_fem_convergence.png")],
         "coupling.py": ["--quick"],
         "field_predictor.py": ["--quick", "--figure", str(HERE / "results" / "quick_field_speed.png")],
         "charged_models.py": ["--quick", "--molecules", "20"], "attention_models.py": ["--quick"],
         "huckel.py": ["--quick"], "compiled.py": ["--quick"],
         "md_coupling.py": ["--radius", "30", "--exchanges", "20", "--rounds", "5"],
         "schwarz.py": ["--figure", str(HERE / "results" / "quick_schwarz.png")]}
# benchmarks/field_fno.py trains the FNO baseline (minutes): run it on its own


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run, figures not for the README)")
    args = parser.parse_args()
    failed = []
    for name in BENCHMARKS:
        extra = QUICK[name] if args.quick else []
        if args.quick:  # keep the README's figures: quick runs write elsewhere
            extra = extra + ["--json", str(HERE / "results" / f"quick_{Path(name).stem}.json")]
        print(f"== {name} {' '.join(extra)}", flush=True)
        start = time.perf_counter()
        rc = subprocess.call([sys.executable, str(HERE / name), *extra])
        print(f"== {name}: exit {rc} after {time.perf_counter() - start:.0f} s", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
