"""Train a FieldPerceiver on an FE field dataset from a TOML configuration.

The loss is the squared relative L2 error per specimen of the non-dimensional displacements
(all points) and stresses (points beyond ``stress_radius`` W of the tips; FE stresses at the
tip are not converged), plus ``k_weight`` times the squared relative error of K*.  Training
keeps the best validation state, stops early after ``patience`` epochs without improvement
or after ``max_minutes``, writes a checkpoint every epoch (``resume = true`` continues from
it) and exports the best state with its metadata through ``multiscale.export``.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import ConfigError, read_sections
from . import data as fdata
from .inputs import scales
from .metrics import R0, tip_distance
from .model import FieldPerceiver
from .predictor import SCALING, batch_inputs, input_spec

DEFAULTS = {
    "data": {"train": None, "validation": None, "validation_fraction": 0.15},
    "model": {"dim": 64, "latents": 32, "heads": 4, "layers": 2, "frequencies": 6,
              "decoder_dim": 0, "decoder_heads": 0, "decoder_block": 1, "activation": "gelu"},
    "train": {"seed": 0, "epochs": 400, "batch_size": 8, "queries": 512, "learning_rate": 2e-3,
              "k_weight": 1.0, "stress_radius": 0.01, "patience": 60, "max_minutes": 20.0,
              "checkpoint": None, "resume": True, "threads": 1},
    "output": {"model": None, "report": None, "name": "crack-fields", "description": ""},
}


def read_config(path: str | Path) -> dict:
    """Configuration with defaults filled in and paths made relative to the file's folder."""
    cfg = read_sections(path, DEFAULTS, (("data", "train"), ("data", "validation"), ("train", "checkpoint"),
                                         ("output", "model"), ("output", "report")))
    if cfg["data"]["train"] is None or cfg["output"]["model"] is None:
        raise ConfigError(f"{path}: [data] train and [output] model are required")
    return cfg


@dataclass
class Tensors:
    """A dataset as non-dimensional tensors."""

    inputs: list            # batch_inputs without the queries (6 tensors)
    query: torch.Tensor     # (N, Q, 2)
    u: torch.Tensor         # (N, Q, 2)
    sigma: torch.Tensor     # (N, Q, 3)
    k: torch.Tensor         # (N, 2, 2)
    rtip: torch.Tensor      # (N, Q) distance to the nearest tip / W

    def __len__(self):
        return len(self.query)


def to_tensors(d: fdata.FieldData) -> Tensors:
    specs = [d.specimen(i) for i in range(len(d))]
    inputs = batch_inputs(specs, list(d.xy))
    sc = [scales(s) for s in specs]
    col = lambda key: np.array([c[key] for c in sc])  # noqa: E731
    u = d.u / col("displacement")[:, None, None]
    sigma = d.sigma / col("stress")[:, None, None]
    k = d.k / col("k")[:, None, None]
    rtip = np.stack([tip_distance(d.xy[i], d.tips[i], len(specs[i].tips())) / specs[i].width
                     for i in range(len(d))])
    f = lambda x: torch.as_tensor(x, dtype=torch.float32)  # noqa: E731
    return Tensors(inputs[:6], inputs[6], f(u), f(sigma), f(k), f(rtip))


def losses(model, t: Tensors, idx, qidx, stress_radius: float, k_weight: float):
    """Mean over the batch of squared relative errors (displacements, stresses, K)."""
    take = lambda x: x[idx].gather(1, qidx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))  # noqa: E731
    out = model(*[x[idx] for x in t.inputs], take(t.query))
    u, s = take(t.u), take(t.sigma)
    mask = (t.rtip[idx].gather(1, qidx) > stress_radius).unsqueeze(-1).float()
    lu = ((out["displacements"] - u) ** 2).sum((1, 2)) / (u ** 2).sum((1, 2))
    ls = (((out["stresses"] - s) ** 2) * mask).sum((1, 2)) / ((s ** 2) * mask).sum((1, 2))
    k = t.k[idx]
    lk = ((out["k"] - k) ** 2).sum((1, 2)) / (k ** 2).sum((1, 2))
    return lu.mean(), ls.mean(), lk.mean()


@torch.no_grad()
def validate(model, t: Tensors, r0: float = R0) -> dict:
    """Mean relative L2 errors (not squared) over a dataset, all query points."""
    model.eval()
    eu, es, ek = [], [], []
    for start in range(0, len(t), 16):
        idx = torch.arange(start, min(start + 16, len(t)))
        out = model(*[x[idx] for x in t.inputs], t.query[idx])
        du = (out["displacements"] - t.u[idx]).norm(dim=(1, 2)) / t.u[idx].norm(dim=(1, 2))
        m = (t.rtip[idx] > r0).unsqueeze(-1).float()
        ds = ((out["stresses"] - t.sigma[idx]) * m).norm(dim=(1, 2)) / (t.sigma[idx] * m).norm(dim=(1, 2))
        kref = t.k[idx][..., 0]
        live = kref != 0
        dk = ((out["k"][..., 0] - kref).abs() / kref.abs().clamp(min=1e-12))[live]
        eu.append(du), es.append(ds), ek.append(dk)
    model.train()
    cat = lambda xs: torch.cat(xs).double()  # noqa: E731
    return {"displacement_rel_l2": cat(eu).mean().item(), "stress_rel_l2": cat(es).mean().item(),
            "k1_rel_error": cat(ek).mean().item(), "k1_rel_error_max": cat(ek).max().item()}


def _split(cfg) -> tuple[fdata.FieldData, fdata.FieldData]:
    train = fdata.read(cfg["data"]["train"])
    if cfg["data"]["validation"]:
        return train, fdata.read(cfg["data"]["validation"])
    n = len(train)
    n_val = max(1, int(round(cfg["data"]["validation_fraction"] * n)))
    if n - n_val < 1:
        raise ValueError(f"dataset has {n} specimens: too few to hold out {n_val} for validation")
    perm = np.random.default_rng(cfg["train"]["seed"]).permutation(n)
    return train.subset(np.sort(perm[n_val:])), train.subset(np.sort(perm[:n_val]))


def build_model(cfg_model: dict, t: Tensors) -> FieldPerceiver:
    model = FieldPerceiver(**cfg_model)
    # scale the smooth part's outputs like the data (stresses beyond the tip zone)
    y = torch.cat([t.u, t.sigma], dim=-1)[t.rtip > 0.05].reshape(-1, 5)
    model.out_mean.copy_(y.mean(0))
    model.out_std.copy_(y.std(0).clamp(min=1e-3))
    return model


def seeded(tc: dict) -> np.random.Generator:
    """Apply [train] threads and seed (torch) and return the numpy generator of that seed."""
    torch.set_num_threads(int(tc["threads"]))
    torch.manual_seed(tc["seed"])
    return np.random.default_rng(tc["seed"])


def train(cfg: dict, progress: bool = True) -> dict:
    """Run training as configured; returns the report (also written to [output] report)."""
    tc = cfg["train"]
    rng = seeded(tc)
    train_d, val_d = _split(cfg)
    tt, tv = to_tensors(train_d), to_tensors(val_d)
    model = build_model(cfg["model"], tt)
    opt = torch.optim.AdamW(model.parameters(), lr=tc["learning_rate"], weight_decay=1e-5)
    steps_per_epoch = max(1, len(tt) // tc["batch_size"])
    total = tc["epochs"] * steps_per_epoch
    budget = 60.0 * tc["max_minutes"]

    def lr_at(step: int, seconds: float) -> float:
        """Warm-up over 3% of the run, then cosine decay to zero by the step or time limit,
        whichever comes first (so a time-limited run still ends annealed)."""
        progress = max(step / total, seconds / budget)
        warm = min(1.0, progress / 0.03)
        return tc["learning_rate"] * warm * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    state = {"epoch": 0, "step": 0, "best": math.inf, "best_state": None, "history": [], "seconds": 0.0}
    ckpt = Path(tc["checkpoint"]) if tc["checkpoint"] else None
    if ckpt and tc["resume"] and ckpt.is_file():
        saved = torch.load(ckpt, weights_only=True)   # plain tensors and settings: no code runs
        model.load_state_dict(saved["model"]), opt.load_state_dict(saved["optimizer"])
        state = saved["state"]
        rng.bit_generator.state = saved["rng"]
        torch.set_rng_state(saved["torch_rng"])
        if progress:
            print(f"resumed from {ckpt} at epoch {state['epoch']}", file=sys.stderr)
    q_all = tt.query.shape[1]
    nq = min(tc["queries"], q_all)
    t0 = time.perf_counter() - state["seconds"]
    stale = sum(1 for h in state["history"][::-1][:tc["patience"]] if h["score"] > state["best"])
    while state["epoch"] < tc["epochs"]:
        perm = rng.permutation(len(tt))
        for s in range(steps_per_epoch):
            idx = torch.as_tensor(perm[s * tc["batch_size"]:(s + 1) * tc["batch_size"]])
            qidx = torch.as_tensor(np.stack([rng.choice(q_all, nq, replace=False) for _ in idx]))
            lu, ls, lk = losses(model, tt, idx, qidx, tc["stress_radius"], tc["k_weight"])
            loss = lu + ls + tc["k_weight"] * lk
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            for group in opt.param_groups:
                group["lr"] = lr_at(state["step"], time.perf_counter() - t0)
            opt.step()
            state["step"] += 1
        state["epoch"] += 1
        val = validate(model, tv)
        score = val["displacement_rel_l2"] / 0.02 + val["stress_rel_l2"] / 0.05 + val["k1_rel_error"] / 0.03
        state["seconds"] = time.perf_counter() - t0
        state["history"].append({"epoch": state["epoch"], "loss": loss.item(), "score": score,
                                 "seconds": state["seconds"], **val})
        if score < state["best"]:
            state["best"], stale = score, 0
            state["best_state"] = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
        if progress:
            print(f"\repoch {state['epoch']}/{tc['epochs']} loss {loss.item():.2e} val u "
                  f"{val['displacement_rel_l2']:.2%} sigma {val['stress_rel_l2']:.2%} K_I "
                  f"{val['k1_rel_error']:.2%}  {state['seconds']:.0f} s", end="", file=sys.stderr,
                  flush=True)
        if ckpt:
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                        "state": state, "rng": rng.bit_generator.state,
                        "torch_rng": torch.get_rng_state(), "config": cfg}, ckpt)
        if stale >= tc["patience"]:
            break
        if state["seconds"] > budget:
            break
    if progress:
        print(file=sys.stderr)
    model.load_state_dict(state["best_state"])
    val = validate(model, tv)
    report = {"validation": val, "epochs": state["epoch"], "seconds": round(state["seconds"], 1),
              "n_train": len(tt), "n_validation": len(tv),
              "parameters": sum(p.numel() for p in model.parameters()), "r0_over_w": R0,
              "history": state["history"]}
    export_model(model, cfg, report)
    if cfg["output"]["report"]:
        Path(cfg["output"]["report"]).write_text(json.dumps(report, indent=1))
    return report


def export_model(model: FieldPerceiver, cfg: dict, report: dict) -> Path:
    from ..model.artifact import export
    from ..model.contract import FieldMetadata
    meta = FieldMetadata(name=cfg["output"]["name"], inputs=input_spec(), scaling=SCALING,
                         description=cfg["output"]["description"] or
                         "FieldPerceiver crack-field predictor trained on FE fields (docs/fields.md)",
                         architecture={"class": "FieldPerceiver", **model.config},
                         training={"validation": report["validation"], "epochs": report["epochs"],
                                   "n_train": report["n_train"], "seconds": report["seconds"],
                                   "domain": fdata.Ranges().domain()})
    return export(model.float(), cfg["output"]["model"], metadata=meta)


def train_from_config(path: str | Path, progress: bool = True) -> dict:
    return train(read_config(path), progress=progress)
