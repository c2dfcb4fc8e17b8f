"""Train the ensemble a TOML configuration describes (``multiscale train CONFIG``) and export it."""

from __future__ import annotations

import dataclasses
import json
from typing import Callable

import torch

from .config import read_config
from .data import StructureDataset, read_structures
from .trainer import Trainer, set_self_energies


def load_weights(model: torch.nn.Module, path) -> None:
    """Set ``model``'s parameters to those of the model file ``path`` (``[model] start_from``);
    its buffers (fixed terms such as the repulsion core) stay as the configuration built them.
    ConfigError when the file's model is not the configuration's."""
    from ..config import ConfigError
    from ..model.artifact import load
    source = load(path).module.state_dict()
    own = dict(model.named_parameters())
    missing = sorted(own.keys() - source.keys())
    buffers = dict(model.named_buffers())
    unexpected = sorted(source.keys() - own.keys() - buffers.keys())
    shapes = sorted(f"{k} {tuple(source[k].shape)} vs {tuple(own[k].shape)}"
                    for k in own.keys() & source.keys() if source[k].shape != own[k].shape)
    if missing or unexpected or shapes:
        raise ConfigError(f"[model] start_from = {str(path)!r} is not the model this configuration "
                          f"builds (missing {missing[:3]}, unexpected {unexpected[:3]}, shapes differ "
                          f"{shapes[:3]}); use the same kind, elements and sizes as that file")
    with torch.no_grad():
        for name, parameter in own.items():
            parameter.copy_(source[name].to(parameter.dtype))


def _train_member(config_path, m: int, log: Callable[[str], None] | None = None):
    """Train ensemble member ``m`` of a configuration through its stages ([training], then
    [fine_tune] if given); (model, summary, history).  Runs in a worker process when
    [training] workers > 1 (then logs with a member prefix)."""
    cfg = read_config(config_path)
    if log is None:
        torch.set_num_threads(1)
        log = lambda msg: print(f"[member {m}] {msg}", flush=True)  # noqa: E731
    structures = read_structures(cfg.data)
    model = cfg.build_model(seed=cfg.training.seed + m)
    dataset = StructureDataset(structures, cfg.elements, model.metadata().cutoff)
    if cfg.start_from is not None:
        load_weights(model, cfg.start_from)
        log(f"member {m + 1}: parameters from {cfg.start_from}")
    else:
        set_self_energies(model, dataset, len(cfg.elements))
    history: list[dict] = []
    summary: dict = {}
    for name, stage in cfg.stages(m):
        log(f"training member {m + 1}/{cfg.ensemble} on {len(structures)} structures ({name})")
        trainer = Trainer(model, dataset, stage, log=log)
        summary = trainer.run()
        offset = len(history)
        history += [{**row, "epoch": row["epoch"] + offset, "stage": name} for row in trainer.history]
    return model, summary, history


def make_ensemble(members: list) -> torch.nn.Module:
    """ANI members share one AEV (ANIEnsemble); any other models average (Ensemble)."""
    from ..potentials.ani import ANIEnsemble, ANIModel
    from ..potentials.ensemble import Ensemble
    if all(isinstance(m, ANIModel) for m in members):
        return ANIEnsemble(members)
    return Ensemble(members)


def train_from_config(path, log: Callable[[str], None] = print):
    """Train the ensemble a TOML configuration describes and export it; returns the model file."""
    from ..model.artifact import export
    from .plots import learning_curves

    cfg = read_config(path)
    cfg.folder.mkdir(parents=True, exist_ok=True)
    jobs = [(path, m) for m in range(cfg.ensemble)]
    if cfg.training.workers > 1 and cfg.ensemble > 1:
        import multiprocessing
        with multiprocessing.get_context("spawn").Pool(min(cfg.training.workers, cfg.ensemble)) as pool:
            results = pool.starmap(_train_member, jobs)
    else:
        results = [_train_member(*job, log=log) for job in jobs]
    members = [model for model, _, _ in results]
    summaries = [summary for _, summary, _ in results]
    histories = [history for _, _, history in results]
    model = members[0] if len(members) == 1 else make_ensemble(members)
    out = export(model, cfg.output_model)
    (cfg.folder / "history.json").write_text(json.dumps({"members": summaries, "history": histories}, indent=1))
    learning_curves(histories, cfg.folder / "learning_curves.png")
    log(f"wrote {out}; validation {summaries}")
    return out


def training_record(model_file, folder) -> dict:
    """Parameter count (all ensemble members), epochs and training seconds of each member (the
    sum of its epochs' times in ``folder``/history.json, so a resumed run counts every epoch)."""
    import os
    from pathlib import Path
    from ..model.artifact import load
    module = load(model_file).module
    histories = json.loads((Path(folder) / "history.json").read_text())["history"]
    return {"parameters": int(sum(p.numel() for p in module.parameters())),
            "epochs": [len(h) for h in histories],
            "training_s": [round(sum(row["seconds"] for row in h), 1) for h in histories],
            "cores": os.cpu_count()}
