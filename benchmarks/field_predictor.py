"""Crack-field predictor vs finite elements: time for the same field at the same points.

    .venv/bin/python benchmarks/field_predictor.py [--quick] [--json FILE] [--figure FILE]

For each random specimen: the FE time is mesh + assembly + solve + K plus evaluating the
field at Q points (wall time of the whole); the predictor time is one call for that specimen
(single), one call with one query point (K only), or one call for all specimens together
(batched, per specimen), each the median of 3 calls after untimed warm-up calls.  Both on one
thread; each FE solve is timed next to the predictions of its specimen, and the speed-ups are
medians of the paired ratios over specimens and rounds.  The shipped predictor runs twice in
every round, as its TorchScript file and compiled to a .pt2 (`multiscale compile`, done first;
``--no-compiled`` skips it); the JSON's top-level figures are the TorchScript file's, "compiled"
holds the .pt2's.
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
    p.add_argument("--no-compiled", action="store_true", help="time the TorchScript file only")
    p.add_argument("--json", default=str(HERE / "results" / "field_predictor.json"))
    p.add_argument("--figure", default=str(HERE.parent / "docs" / "figures" / "field_predictor_speed.png"))
    args = p.parse_args()
    torch.set_num_threads(1)
    from multiscale.continuum.fem import solve
    from multiscale.fields.data import query_points, random_specimen
    from multiscale.fields.predictor import FieldPredictor
    from multiscale.model.registry import model_path

    pred = FieldPredictor.load(model_path("crack-fields"))
    predictors = {"torchscript": pred}
    if not args.no_compiled:
        import tempfile

        import multiscale.fields  # noqa: F401  registers the field compiler
        from multiscale.model.compiler import compile_file
        folder = Path(tempfile.mkdtemp(prefix="field-benchmark-"))
        predictors["compiled"] = FieldPredictor.load(compile_file("crack-fields", folder / "crack_fields.pt2"))
    rng = np.random.default_rng(2024)
    n, repeats = (4, 3) if args.quick else (16, 5)
    specs = [random_specimen(rng) for _ in range(n)]
    queries = []   # the query points lie inside the material: one untimed FE solve each
    for i, spec in enumerate(specs):
        queries.append(query_points(spec, solve(spec).inside, args.queries, np.random.default_rng(i)))
    for p_ in predictors.values():
        for _ in range(2):  # warm-up (TorchScript profiling runs)
            p_.predict(specs[0], queries[0])
            p_.predict(specs[0], queries[0][:1])

    def timed(f, times: int = 3, warm: int = 0) -> float:
        """Median wall time of ``times`` calls after ``warm`` untimed ones."""
        for _ in range(warm):
            f()
        out = []
        for _ in range(times):
            t0 = time.perf_counter()
            f()
            out.append(time.perf_counter() - t0)
        return float(np.median(out))
    # This machine's speed drifts by 2x within minutes, so every FE solve is timed next to the
    # predictions of the same specimen and the speed-ups are medians of those paired ratios
    # (the batch: against the FE solves of its round).  An FE solve evicts the predictor from
    # the caches (the next call takes ~1.6x, the third is back to steady state), an artefact
    # of this interleaving, so two untimed calls precede the timed ones.
    fe = []
    times = {name: {"single": [], "k": [], "batched": [], "r_single": [], "r_k": [], "r_batched": []}
             for name in predictors}
    for _ in range(repeats):
        round_fe = []
        for spec, q in zip(specs, queries):
            def fe_field(spec=spec, q=q):
                sol = solve(spec)
                sol.displacements(q), sol.stresses(q)
            t_fe = timed(fe_field, 1)
            round_fe.append(t_fe)
            fe.append(t_fe)
            for name, p_ in predictors.items():
                t_single = timed(lambda spec=spec, q=q: p_.predict(spec, q), warm=2)
                t_k = timed(lambda spec=spec, q=q: p_.predict(spec, q[:1]))
                times[name]["single"].append(t_single), times[name]["k"].append(t_k)
                times[name]["r_single"].append(t_fe / t_single), times[name]["r_k"].append(t_fe / t_k)
        for name, p_ in predictors.items():
            t_batch = timed(lambda: p_.predict_batch(specs, queries), warm=1) / n
            times[name]["batched"].append(t_batch)
            times[name]["r_batched"].append(float(np.median(round_fe)) / t_batch)
    med = lambda values: float(np.median(values))  # noqa: E731

    def figures(t):
        return {"predictor_single_seconds": med(t["single"]), "predictor_batched_seconds": med(t["batched"]),
                "speedup_single": med(t["r_single"]), "speedup_batched": med(t["r_batched"]),
                "predictor_k_only_seconds": med(t["k"]), "speedup_k_only": med(t["r_k"]),
                "speedup_single_quartiles": [float(np.percentile(t["r_single"], 25)),
                                             float(np.percentile(t["r_single"], 75))]}
    out = {"specimens": n, "queries": args.queries, "rounds": repeats, "fe_seconds": med(fe),
           **figures(times["torchscript"]), "threads": 1, "model": pred.metadata.name}
    if "compiled" in times:
        out["compiled"] = figures(times["compiled"])
        out["compiled_over_torchscript_single"] = med(
            [a / b for a, b in zip(times["torchscript"]["single"], times["compiled"]["single"])])
    print(json.dumps(out, indent=2))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4 if "compiled" in out else 5, 3.2), constrained_layout=True)
    best = out.get("compiled", out)
    vals = [out["fe_seconds"], out["predictor_single_seconds"], best["predictor_single_seconds"],
            best["predictor_batched_seconds"], best["predictor_k_only_seconds"]]
    names = ["FE", ".pt single", ".pt2 single", f".pt2 batch of {n}", ".pt2 K only"]
    if "compiled" not in out:
        vals, names = vals[:2] + vals[3:], ["FE", "single", f"batch of {n}", "K only"]
    ax.bar(names, vals, color=["grey", "tab:blue", "tab:purple", "tab:green", "tab:orange"][:len(vals)])
    ax.set_yscale("log")
    ax.set_ylabel("seconds per specimen (1 thread)")
    ax.set_title(f"field at {args.queries} points: x{best['speedup_single']:.0f} single, "
                 f"x{best['speedup_batched']:.0f} batched", fontsize=9)
    for i, v in enumerate(vals):
        ax.text(i, v, f"{v * 1e3:.1f} ms", ha="center", va="bottom", fontsize=8)
    Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=120)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
