"""FieldPerceiver vs a Fourier neural operator (neuraloperator) on the same FE specimens.

    .venv/bin/python benchmarks/field_fno.py [--minutes 7] [--n-train 400]

Rasterises the first --n-train specimens of the field predictor's training set and the
held-out set (results/crack_fields/, from `multiscale fields build-default`) on a 48 x 96
grid, trains the FNO for --minutes on one thread and compares both models' errors on the
held-out grid nodes.  Writes benchmarks/results/field_fno.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default="results/crack_fields")
    p.add_argument("--minutes", type=float, default=7.0)
    p.add_argument("--n-train", type=int, default=400)
    p.add_argument("--json", default=str(HERE / "results" / "field_fno.json"))
    args = p.parse_args()
    torch.set_num_threads(1)
    from fno_baseline import perceiver_on_grid, rasterise, train_fno
    from multiscale.model.registry import model_path
    work = Path(args.work)
    train_grid, test_grid = work / "fno_train.h5", work / "fno_test.h5"
    if not test_grid.is_file():
        rasterise(work / "test.h5", test_grid)
    if not train_grid.is_file():
        rasterise(work / "train.h5", train_grid, n=args.n_train)
    fno = train_fno(train_grid, test_grid, minutes=args.minutes)
    model = fno.pop("model")
    perceiver = perceiver_on_grid(model_path("crack-fields"), test_grid)
    meta = json.loads((model_path("crack-fields").with_suffix(".json")).read_text())
    out = {"fno": fno, "perceiver_on_grid": perceiver,
           "perceiver_parameters": meta["training"]["parameters"],
           "perceiver_train_seconds": meta["training"]["seconds"],
           "fno_config": {"n_modes": [16, 16], "hidden_channels": 32, "n_layers": 4,
                          "grid": [48, 96], "n_train": args.n_train}}
    del model
    print(json.dumps(out, indent=2))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
