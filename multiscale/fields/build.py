"""Regenerate the shipped crack-field predictors: FE data, training, held-out evaluation.

``multiscale fields build-default`` writes multiscale/data/crack_fields.pt and its report
multiscale/data/crack_fields.json; the training configuration is multiscale/data/crack_fields.toml.
``multiscale fields build-atomistic`` then makes the atomistic near-tip stress sets with the
shipped silicon model and fine-tunes that predictor into multiscale/data/crack_fields_si.pt
(report crack_fields_si.json, configuration crack_fields_si.toml).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py

from ..model.registry import DATA
from . import data as fdata
from .evaluate import evaluate
from .train import read_config, train

N_TRAIN, TRAIN_SEED = 1500, 3
N_TEST, TEST_SEED = 60, 2
TEST_DATA = "test.h5 in the --work folder (60 FE specimens, seed 2)"


def _dataset(path: Path, n: int, seed: int) -> Path:
    """Reuse ``path`` if it holds the same n and seed, else generate it."""
    if path.is_file():
        with h5py.File(path, "r") as f:
            if f.attrs.get("seed") == seed and len(f["params"]) == n:
                print(f"reusing {path}")
                return path
    print(f"generating {n} FE specimens -> {path}")
    return fdata.generate(path, n, seed=seed)


def build(work: str | Path = "results/crack_fields", plots: bool = True) -> dict:
    work = Path(work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    _dataset(work / "train.h5", N_TRAIN, TRAIN_SEED)
    test = _dataset(work / "test.h5", N_TEST, TEST_SEED)
    config = work / "crack_fields.toml"
    shutil.copy(DATA / "crack_fields.toml", config)
    cfg = read_config(config)
    cfg["train"]["resume"] = False
    report = train(cfg)
    model = DATA / "crack_fields.pt"
    shutil.copy(cfg["output"]["model"], model)
    held_out = evaluate(model, test, plots=work / "plots" if plots else None)
    held_out.update(model="multiscale/data/crack_fields.pt", data=TEST_DATA)
    out = {"held_out": held_out, "training": {k: v for k, v in report.items() if k != "history"},
           "command": "multiscale fields build-default", "config": "multiscale/data/crack_fields.toml"}
    (DATA / "crack_fields.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(held_out, indent=1))
    return out


def build_atomistic(work: str | Path = "results/crack_fields", potential: str = "si-ani") -> dict:
    from . import atomistic
    from .finetune import finetune
    from .finetune import read_config as read_finetune_config
    work = Path(work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    _dataset(work / "train.h5", N_TRAIN, TRAIN_SEED)
    _dataset(work / "test.h5", N_TEST, TEST_SEED)
    if not ((work / "atomistic_train.h5").is_file() and (work / "atomistic_test.h5").is_file()):
        atomistic.build(work, potential)
    else:
        print(f"reusing {work / 'atomistic_train.h5'} and {work / 'atomistic_test.h5'}")
    config = work / "crack_fields_si.toml"
    shutil.copy(DATA / "crack_fields_si.toml", config)
    report = finetune(read_finetune_config(config))
    model = DATA / "crack_fields_si.pt"
    shutil.copy(work / "crack_fields_si.pt", model)
    from .plots import atomistic_profiles
    atomistic_profiles(work / "atomistic_test.h5", [DATA / "crack_fields.pt", model],
                       ["FE-trained", "fine-tuned"], work / "plots" / "fields_atomistic.png")
    report["fe_held_out"]["base"].update(model="multiscale/data/crack_fields.pt", data=TEST_DATA)
    report["fe_held_out"]["finetuned"].update(model="multiscale/data/crack_fields_si.pt", data=TEST_DATA)
    out = {k: v for k, v in report.items() if k != "history"}
    with h5py.File(work / "atomistic_train.h5", "r") as f:    # the potential's silicon, for tests
        out["material"] = json.loads(f.attrs["material"])
        out["potential"] = str(f.attrs["potential"])
    out.update({"command": "multiscale fields build-atomistic",
                "config": "multiscale/data/crack_fields_si.toml"})
    (DATA / "crack_fields_si.json").write_text(json.dumps(out, indent=1))
    print(json.dumps({k: out[k] for k in ("before", "after")}, indent=1))
    return out
