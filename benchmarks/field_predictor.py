"""Crack-field predictor vs finite elements: time for the same field at the same points.

    .venv/bin/python benchmarks/field_predictor.py [--quick] [--json FILE] [--figure FILE]

For each random specimen: the FE time is mesh + assembly + solve + K plus evaluating the
field at Q points (wall time of the whole); the predictor time is one call for that specimen
(single) or one call for all specimens together (batched, per specimen).  Both on one thread,
interleaved in rounds, medians reported.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one thread for FE too (OpenBLAS' idle threads spin and
                                      # would steal the core the predictor runs on next)
import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--queries", type=int, default=1024)
    p.add_argument("--json", default=str(HERE / "results" / "field_predictor.json"))
    p.add_argument("--figure", default=str(HERE.parent / "docs" / "figures" / "field_predictor_speed.png"))
    args = p.parse_args()
    torch.set_num_threads(1)
    from multiscale.continuum.fem import solve
    from multiscale.fields.data import query_points, random_specimen
    from multiscale.fields.predictor import FieldPredictor
    from multiscale.registry import model_path

    pred = FieldPredictor.load(model_path("crack-fields"))
    rng = np.random.default_rng(2024)
    n, repeats = (4, 3) if args.quick else (16, 3)
    specs = [random_specimen(rng) for _ in range(n)]
    pred.predict(specs[0], np.array([[1.0, 0.0]]))  # warm-up (TorchScript profiling runs)
    pred.predict(specs[0], np.array([[1.0, 0.0]]))
    # Each round times every FE solve, then every single prediction, then the batch, so FE and
    # predictor see the same machine load (this machine's speed drifts by 2x within minutes);
    # each figure is the median over rounds and specimens.
    fe, single, k_only, batched, queries = [[] for _ in range(n)], [[] for _ in range(n)], \
        [[] for _ in range(n)], [], [None] * n
    for _ in range(repeats):
        for i, spec in enumerate(specs):
            t0 = time.perf_counter()
            sol = solve(spec)
            if queries[i] is None:
                queries[i] = query_points(spec, sol.inside, args.queries, np.random.default_rng(i))
            sol.displacements(queries[i]), sol.stresses(queries[i])
            fe[i].append(time.perf_counter() - t0)
        for store, m in ((single, args.queries), (k_only, 1)):
            for i, spec in enumerate(specs):
                t0 = time.perf_counter()
                pred.predict(spec, queries[i][:m])
                store[i].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        pred.predict_batch(specs, queries)
        batched.append((time.perf_counter() - t0) / n)
    med = lambda rows: float(np.median([np.median(r) for r in rows]))  # noqa: E731
    fe, single, k_only, batched = med(fe), med(single), med(k_only), float(np.median(batched))
    out = {"specimens": n, "queries": args.queries, "rounds": repeats, "fe_seconds": fe,
           "predictor_single_seconds": single, "predictor_batched_seconds": batched,
           "speedup_single": fe / single, "speedup_batched": fe / batched,
           "predictor_k_only_seconds": k_only, "speedup_k_only": fe / k_only, "threads": 1}
    print(json.dumps(out, indent=2))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.2), constrained_layout=True)
    vals = [out["fe_seconds"], out["predictor_single_seconds"], out["predictor_batched_seconds"],
            out["predictor_k_only_seconds"]]
    ax.bar(["FE", "predictor\nsingle", f"predictor\nbatch of {n}", "predictor\nK only"], vals,
           color=["grey", "tab:blue", "tab:green", "tab:orange"])
    ax.set_yscale("log")
    ax.set_ylabel("seconds per specimen (1 thread)")
    ax.set_title(f"field at {args.queries} points: x{out['speedup_single']:.0f} single, "
                 f"x{out['speedup_batched']:.0f} batched", fontsize=9)
    for i, v in enumerate(vals):
        ax.text(i, v, f"{v * 1e3:.1f} ms", ha="center", va="bottom", fontsize=8)
    Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=120)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
