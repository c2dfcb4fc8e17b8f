"""Checkpoints of a coupled run: nested dicts of arrays and plain values in one HDF5 file,
written atomically (temporary file in the same folder, fsync, rename), so a run killed
while writing keeps its previous checkpoint intact.

Arrays become datasets (dtype and shape kept bit for bit); every other value (numbers,
strings, lists of records such as a loading history) is stored as JSON, where floats
round-trip exactly and arrays nested inside lists are tagged so they come back as arrays.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

_ARRAY = "__ndarray__"


def _encode(obj):
    if isinstance(obj, np.ndarray):
        return {_ARRAY: obj.tolist(), "dtype": obj.dtype.str}
    if isinstance(obj, (np.generic,)):
        return obj.item()
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint")


def _decode(obj):
    if isinstance(obj, dict) and _ARRAY in obj:
        return np.array(obj[_ARRAY], dtype=np.dtype(obj["dtype"]))
    return obj


def _write(group: h5py.Group, data: dict[str, Any]) -> None:
    for key, value in data.items():
        if "/" in key:
            raise ValueError(f"checkpoint key {key!r} may not contain '/'")
        if isinstance(value, dict):
            _write(group.create_group(key), value)
        elif isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
            group.create_dataset(key, data=value)
        else:
            ds = group.create_dataset(key, data=json.dumps(value, default=_encode))
            ds.attrs["json"] = True


def _read(group: h5py.Group) -> dict[str, Any]:
    out = {}
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            out[key] = _read(item)
        elif item.attrs.get("json", False):
            out[key] = json.loads(item[()].decode() if isinstance(item[()], bytes) else item[()],
                                  object_hook=_decode)
        else:
            out[key] = item[()]
    return out


def save(path: str | Path, data: dict[str, Any]) -> Path:
    """Write ``data`` (nested dicts) to ``path`` atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        _write(f, data)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def load(path: str | Path) -> dict[str, Any]:
    """The nested dict :func:`save` wrote; a clear error if there is none."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: a run writes one every [run] checkpoint_every "
                                "increments; start without --restart")
    with h5py.File(path, "r") as f:
        return _read(f)
