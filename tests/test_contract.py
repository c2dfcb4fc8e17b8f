"""Model files: metadata round trip and clear errors for bad files."""

import json
import zipfile

import pytest
import torch

import multiscale
from multiscale import ModelContractError, ModelMetadata
from multiscale.potentials import LennardJones


@pytest.fixture()
def lj_file(tmp_path):
    return multiscale.export(LennardJones(["Ar"], 0.0104, 3.4, 8.5), tmp_path / "lj.pt")


def test_metadata_round_trip(tmp_path):
    model = LennardJones(["Ar", "Kr"], [[0.0104, 0.0120], [0.0120, 0.0140]], 3.5, 9.0, shift=True)
    meta = ModelMetadata(name="my-lj", elements=("Ar", "Kr"), cutoff=9.0, hops=1, version="1.2",
                         citation="me et al.", description="test")
    loaded = multiscale.load(multiscale.export(model, tmp_path / "m.pt", metadata=meta))
    assert loaded.metadata == meta
    assert loaded.metadata.cutoff == 9.0 and loaded.metadata.elements == ("Ar", "Kr")
    assert loaded.dtype == torch.float64


def test_float32_export(tmp_path):
    model = LennardJones(["Ar"], 0.0104, 3.4, 8.5)
    meta = model.metadata()
    meta32 = ModelMetadata(**{**meta.__dict__, "dtype": "float32"})
    loaded = multiscale.load(multiscale.export(model, tmp_path / "m32.pt", metadata=meta32))
    assert loaded.dtype == torch.float32


def test_missing_file(tmp_path):
    with pytest.raises(ModelContractError, match="does not exist"):
        multiscale.load(tmp_path / "nope.pt")


def test_corrupt_file(tmp_path, lj_file):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a model")
    with pytest.raises(ModelContractError, match="not a TorchScript archive"):
        multiscale.load(bad)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(lj_file.read_bytes()[:2000])
    with pytest.raises(ModelContractError, match="not a TorchScript archive|could not be loaded"):
        multiscale.load(truncated)


def test_plain_torchscript_without_metadata(tmp_path):
    path = tmp_path / "plain.pt"
    torch.jit.save(torch.jit.script(LennardJones(["Ar"], 0.01, 3.4, 8.0)), str(path))
    with pytest.raises(ModelContractError, match="has no multiscale.json metadata"):
        multiscale.load(path)


def _rewrite_metadata(src, dst, edit):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("extra/multiscale.json"):
                data = edit(data.decode()).encode()
            zout.writestr(item, data)


@pytest.mark.parametrize("edit, message", [
    (lambda d: {k: v for k, v in d.items() if k != "cutoff"}, r"lacks required field\(s\) \['cutoff'\]"),
    (lambda d: {**d, "cutoff": -1.0}, "cutoff must be a positive number"),
    (lambda d: {**d, "hops": 0}, "hops must be an integer >= 1"),
    (lambda d: {**d, "elements": ["Xx"]}, "'Xx' is not a chemical symbol"),
    (lambda d: {**d, "dtype": "float16"}, "dtype must be one of"),
    (lambda d: {**d, "contract_version": 99}, "contract_version 99 is not supported"),
    (lambda d: {**d, "colour": "red"}, r"unknown field\(s\) \['colour'\]"),
    (lambda d: {k: v for k, v in d.items() if k != "format"}, "does not declare format"),
])
def test_incomplete_metadata(tmp_path, lj_file, edit, message):
    dst = tmp_path / "edited.pt"
    _rewrite_metadata(lj_file, dst, lambda text: json.dumps(edit(json.loads(text))))
    with pytest.raises(ModelContractError, match=message):
        multiscale.load(dst)


def test_invalid_json_metadata(tmp_path, lj_file):
    dst = tmp_path / "edited.pt"
    _rewrite_metadata(lj_file, dst, lambda text: text[:-5])
    with pytest.raises(ModelContractError, match="not valid JSON"):
        multiscale.load(dst)


def test_export_refuses_hops_below_the_receptive_field(tmp_path):
    """A 2-hop model whose metadata says hops = 1 would get too thin a ghost shell in LAMMPS
    (silently wrong energies on several ranks): export measures and refuses, writing nothing."""
    import dataclasses
    from multiscale.model.artifact import receptive_field
    from multiscale.potentials import MessagePassingPotential
    model = MessagePassingPotential(["Si"], cutoff=3.6, hops=2, features=8, seed=1)
    with pytest.raises(ModelContractError, match="depends on atoms 2 hops away, but the metadata says "
                                                 "hops = 1.*export it with hops = 2"):
        multiscale.export(model, tmp_path / "lie.pt", metadata=dataclasses.replace(model.metadata(), hops=1))
    assert list(tmp_path.iterdir()) == []
    honest = multiscale.load(multiscale.export(model, tmp_path / "honest.pt"))
    assert receptive_field(honest) == 2
    three = MessagePassingPotential(["Si"], cutoff=3.6, hops=3, features=8, seed=1)
    assert receptive_field(multiscale.load(multiscale.export(three, tmp_path / "three.pt"))) == 3


class _NoContract(torch.nn.Module):
    def forward(self, species: torch.Tensor, edge_vectors: torch.Tensor):
        return {"energies": torch.zeros(species.shape[0], dtype=edge_vectors.dtype)}

    def metadata(self):
        return ModelMetadata(name="wrong", elements=["Si"], cutoff=3.0)


def test_wrong_forward_signature_is_refused_at_export_and_load(tmp_path):
    with pytest.raises(ModelContractError, match=r"wrong.pt: forward\(species: Tensor, edge_vectors: Tensor\) "
                                                 r"does not take the contract's arguments"):
        multiscale.export(_NoContract(), tmp_path / "wrong.pt")
    assert list(tmp_path.iterdir()) == []
    multiscale.export(_NoContract(), tmp_path / "wrong.pt", check=False)   # written anyway, unchecked
    with pytest.raises(ModelContractError, match="does not take the contract's arguments"):
        multiscale.load(tmp_path / "wrong.pt")
