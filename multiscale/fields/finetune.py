"""Fine-tune a field predictor on atomistic near-tip stresses (``multiscale fields finetune CONFIG``).

The base predictor (FE-trained) is rebuilt from its file's architecture and weights and
trained further on a loss of two parts:

* atomistic: the squared relative L2 error of the non-dimensional stresses at the
  coarse-grained points of an atomistic dataset (``multiscale.fields.atomistic``), plus that
  of K, which is the FE specimen's by construction (without it the K head drifts and the
  singular term's strength with it: a continuum scaled by the head's K would be mis-loaded);
* FE replay, weighted by ``fe_weight``: the FE training loss (displacements, stresses
  beyond ``stress_radius``, K) on batches of the FE data, so the far field stays as the
  FE-only model had it.

``trainable = "decoder"`` trains only the per-query decoder and keeps the encoder and K
head (so K) exactly; the default, ``"all"``, reached a lower atomistic error with less loss of
FE accuracy in the shipped fine-tuning (docs/fields.md).

Before and after, the atomistic held-out set is scored (stress relative L2 over the points,
per sample) and, if given, the FE held-out set with ``multiscale.fields.evaluate``.
The result is exported with its metadata like any trained predictor.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from . import data as fdata
from .model import FieldPerceiver
from .predictor import FieldPredictor
from ..config import ConfigError, read_sections
from .train import Tensors, losses, seeded, to_tensors

DEFAULTS = {
    "data": {"atomistic": None, "atomistic_test": None, "fe": None, "fe_test": None},
    "model": {"base": "crack-fields"},
    "train": {"seed": 0, "steps": 2000, "learning_rate": 1e-3, "batch_size": 4, "fe_batch_size": 8,
              "fe_weight": 1.0, "queries": 512, "stress_radius": 0.01, "threads": 1,
              "trainable": "all"},
    "output": {"model": None, "report": None, "name": "crack-fields-si", "description": ""},
}


def read_config(path: str | Path) -> dict:
    """Configuration with defaults; paths relative to the file's folder."""
    cfg = read_sections(path, DEFAULTS, [("data", k) for k in ("atomistic", "atomistic_test", "fe", "fe_test")]
                        + [("output", "model"), ("output", "report")], what="fine-tuning")
    missing = [k for k in ("atomistic", "fe") if cfg["data"][k] is None] + \
              (["output.model"] if cfg["output"]["model"] is None else [])
    if missing:
        raise ConfigError(f"{path}: {missing} required ([data] atomistic and fe, [output] model)")
    return cfg


def base_model(name_or_path: str) -> tuple[FieldPerceiver, FieldPredictor]:
    """An eager, trainable copy of a predictor file (or a shipped name) and the file loaded."""
    from ..model.registry import resolve
    pred = FieldPredictor.load(resolve(name_or_path))
    arch = {k: v for k, v in pred.metadata.architecture.items() if k != "class"}
    model = FieldPerceiver(**arch).load_weights(pred.module)
    return model, pred


@torch.no_grad()
def atomistic_errors(model, t: Tensors) -> dict:
    """Relative L2 error of the stresses per atomistic sample (all its points), with the
    components' own errors (sigma_xx, sigma_yy, sigma_xy)."""
    model.eval()
    out = model(*t.inputs, t.query)["stresses"]
    model.train()
    rel = ((out - t.sigma).norm(dim=(1, 2)) / t.sigma.norm(dim=(1, 2))).double()
    comp = ((out - t.sigma).norm(dim=1) / t.sigma.norm(dim=1)).double().mean(0)
    return {"stress_rel_l2": {"mean": rel.mean().item(), "max": rel.max().item()},
            "component_rel_l2": dict(zip(("xx", "yy", "xy"), comp.tolist()))}


DECODER = ("query_in", "decode", "head")   # the per-query path, what trainable = "decoder" trains


def trainable_parameters(model: FieldPerceiver, which: str) -> list:
    """``"decoder"``: only the per-query path (the specimen's encoding and its K, which the
    atomistic samples share with FE by construction, stay as trained); ``"all"``: everything."""
    if which not in ("decoder", "all"):
        raise ConfigError(f"[train] trainable must be 'decoder' or 'all', got {which!r}")
    out = []
    for name, p in model.named_parameters():
        p.requires_grad_(which == "all" or name.split(".")[0] in DECODER)
        if p.requires_grad:
            out.append(p)
    return out


def finetune(cfg: dict, progress: bool = True) -> dict:
    tc = cfg["train"]
    rng = seeded(tc)
    model, base = base_model(cfg["model"]["base"])
    ta = to_tensors(fdata.read(cfg["data"]["atomistic"]))
    tf = to_tensors(fdata.read(cfg["data"]["fe"]))
    tt = to_tensors(fdata.read(cfg["data"]["atomistic_test"])) if cfg["data"]["atomistic_test"] else None
    before = {"atomistic_train": atomistic_errors(model, ta)}
    if tt is not None:
        before["atomistic_test"] = atomistic_errors(model, tt)
    params = trainable_parameters(model, tc["trainable"])
    opt = torch.optim.AdamW(params, lr=tc["learning_rate"], weight_decay=1e-5)
    nq = min(tc["queries"], tf.query.shape[1])
    t0 = time.perf_counter()
    history = []
    for step in range(tc["steps"]):
        lr = tc["learning_rate"] * 0.5 * (1 + math.cos(math.pi * step / tc["steps"]))
        for group in opt.param_groups:
            group["lr"] = lr
        ia = torch.as_tensor(rng.choice(len(ta), min(tc["batch_size"], len(ta)), replace=False))
        out = model(*[x[ia] for x in ta.inputs], ta.query[ia])
        s, k = ta.sigma[ia], ta.k[ia]
        la = (((out["stresses"] - s) ** 2).sum((1, 2)) / (s ** 2).sum((1, 2))).mean()
        # the samples' K is the FE specimen's by construction: held, so the singular term keeps
        # its strength and the correction goes into the smooth part
        la = la + (((out["k"] - k) ** 2).sum((1, 2)) / (k ** 2).sum((1, 2))).mean()
        idx = torch.as_tensor(rng.choice(len(tf), tc["fe_batch_size"], replace=False))
        qidx = torch.as_tensor(np.stack([rng.choice(tf.query.shape[1], nq, replace=False) for _ in idx]))
        lu, ls, lk = losses(model, tf, idx, qidx, tc["stress_radius"], 1.0)
        loss = la + tc["fe_weight"] * (lu + ls + lk)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        history.append({"step": step + 1, "atomistic": la.item(), "fe": (lu + ls + lk).item()})
        if progress and (step + 1) % 10 == 0:
            print(f"\rstep {step + 1}/{tc['steps']} atomistic loss {la.item():.2e} FE loss "
                  f"{(lu + ls + lk).item():.2e}  {time.perf_counter() - t0:.0f} s", end="",
                  file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    after = {"atomistic_train": atomistic_errors(model, ta)}
    if tt is not None:
        after["atomistic_test"] = atomistic_errors(model, tt)
    report = {"base": str(base.metadata.name), "before": before, "after": after,
              "domain": base.metadata.training.get("domain"),
              "steps": tc["steps"], "seconds": round(time.perf_counter() - t0, 1),
              "n_atomistic": len(ta), "n_atomistic_test": 0 if tt is None else len(tt),
              "history": history}
    path = _export(model, cfg, report)
    if cfg["data"]["fe_test"]:
        from ..model.registry import resolve
        from .evaluate import evaluate
        report["fe_held_out"] = {"base": evaluate(resolve(cfg["model"]["base"]), cfg["data"]["fe_test"], fe_check=False),
                                 "finetuned": evaluate(path, cfg["data"]["fe_test"], fe_check=False)}
    if cfg["output"]["report"]:
        Path(cfg["output"]["report"]).write_text(json.dumps(report, indent=1))
    return report


def _export(model, cfg, report) -> Path:
    from ..model.artifact import export
    from ..model.contract import FieldMetadata
    from .predictor import SCALING, input_spec
    test = report["after"].get("atomistic_test", report["after"]["atomistic_train"])
    meta = FieldMetadata(name=cfg["output"]["name"], inputs=input_spec(), scaling=SCALING,
                         description=cfg["output"]["description"] or
                         f"{report['base']} fine-tuned on atomistic near-tip stresses (docs/fields.md)",
                         architecture={"class": "FieldPerceiver", **model.config},
                         training={"finetuned_from": report["base"], "steps": report["steps"],
                                   "domain": report["domain"],
                                   "n_atomistic": report["n_atomistic"],
                                   "atomistic_stress_rel_l2": test["stress_rel_l2"]["mean"]})
    return export(model.float(), cfg["output"]["model"], metadata=meta)


def finetune_from_config(path: str | Path, progress: bool = True) -> dict:
    return finetune(read_config(path), progress=progress)
