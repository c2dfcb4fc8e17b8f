"""Crack-field predictor: K-field basis, scaling, export/load, training and evaluation on FE data."""

import json
import math

import numpy as np
import pytest
import torch

import multiscale
from multiscale.continuum.lefm import NearTipField
from multiscale.continuum.specimen import Specimen
from multiscale.model.contract import FieldMetadata, ModelContractError
from multiscale.fields import data as fdata
from multiscale.fields.model import FieldPerceiver
from multiscale.fields.williams import _crack_frame, williams
from multiscale.fields.predictor import FieldPredictor, batch_inputs
from multiscale.fields.train import DEFAULTS, export_model, to_tensors, train, validate

TINY = {"dim": 16, "latents": 8, "heads": 2, "layers": 1, "frequencies": 3, "decoder_block": 0,
        "activation": "silu"}   # the shipped model's kind of decoder, smaller


@pytest.fixture(scope="module")
def fe_data(tmp_path_factory):
    """Fifteen FE specimens (12 to train on, 3 held out), 128 query points each."""
    folder = tmp_path_factory.mktemp("fields")
    return (fdata.generate(folder / "train.h5", 12, n_query=128, seed=5, progress=False),
            fdata.generate(folder / "test.h5", 3, n_query=128, seed=6, progress=False))


def _config(tmp_path, train_file, test_file, epochs):
    cfg = {k: dict(v) for k, v in DEFAULTS.items()}
    cfg["data"].update(train=str(train_file), validation=str(test_file))
    cfg["model"].update(TINY)
    cfg["train"].update(epochs=epochs, batch_size=4, queries=64, learning_rate=3e-3, patience=1000,
                        checkpoint=str(tmp_path / "ckpt.pt"))
    cfg["output"].update(model=str(tmp_path / "tiny.pt"), report=str(tmp_path / "tiny.json"))
    return cfg


@pytest.fixture(scope="module")
def tiny_model(fe_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    report = train(_config(folder, *fe_data, epochs=4), progress=False)
    return folder / "tiny.pt", report


def test_williams_basis_matches_matscipy_k_field():
    """The network's singular basis equals NearTipField (matscipy) rotated into an inclined crack."""
    nu, angle = 0.3, 0.4
    d = np.array([math.cos(angle), math.sin(angle)])
    tip = np.array([0.3, 0.1])
    xy = np.random.default_rng(0).uniform(-0.2, 0.2, (30, 2)) + tip
    rot = np.array([[d[0], -d[1]], [d[1], d[0]]])
    ref = NearTipField.isotropic(1.0, nu)
    t = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731
    r, theta = _crack_frame(t(xy)[None], t(tip)[None, None], t(d)[None, None])
    u, s = williams(r, theta, t(d)[None, None], t([nu]))
    for mode, (k1, k2) in enumerate([(1.0, 0.0), (0.0, 1.0)]):
        np.testing.assert_allclose(u[0, :, 0, mode].numpy(), ref.displacements((xy - tip) @ rot, k1, k2) @ rot.T,
                                   atol=1e-6)
        sl = ref.stresses((xy - tip) @ rot, k1, k2)
        tens = np.array([[[a, c], [c, b]] for a, b, c in sl])
        g = rot @ tens @ rot.T
        np.testing.assert_allclose(s[0, :, 0, mode].numpy(), np.stack([g[:, 0, 0], g[:, 1, 1], g[:, 0, 1]], 1),
                                   atol=1e-8)


def test_specimen_tokens_follow_the_geometry():
    """Boundary tokens lie on the outer edges, equally spaced in arc length, with the side's
    outward normal and load flag; crack tokens lie on the crack; tips and directions are the
    specimen's own (Specimen.tips / tip_directions)."""
    from multiscale.fields.inputs import N_EDGE_TOKENS, N_CRACK_TOKENS, model_inputs
    rng = np.random.default_rng(4)
    specs = [fdata.random_specimen(rng) for _ in range(20)] + [Specimen("ccp", 80, 160, 20, crack_angle=-25)]
    for spec in specs:
        inp, W = model_inputs(spec), spec.width
        h = spec.height / (2 * W)
        x, y, free, loaded, crack, nx, ny = inp["tokens"][:N_EDGE_TOKENS].T
        sides = [np.isclose(y, -h) & (ny == -1), np.isclose(x, 1) & (nx == 1),
                 np.isclose(y, h) & (ny == 1), np.isclose(x, 0) & (nx == -1)]
        assert (sides[0] | sides[1] | sides[2] | sides[3]).all()
        np.testing.assert_array_equal(loaded, np.abs(ny)), np.testing.assert_array_equal(free, np.abs(nx))
        assert not crack.any()
        arc = np.select(sides, [x, 1 + (y + h), 1 + 2 * h + (1 - x), 2 + 2 * h + (h - y)])
        np.testing.assert_allclose(arc, (np.arange(N_EDGE_TOKENS) + 0.5) / N_EDGE_TOKENS * (2 + 4 * h), atol=1e-12)
        cracks = inp["tokens"][N_EDGE_TOKENS:]
        assert cracks.shape[0] == N_CRACK_TOKENS and (cracks[:, 4] == 1).all()
        start, end = spec.mouth(), spec.tips()[0]
        f = (np.arange(N_CRACK_TOKENS) + 0.5) / N_CRACK_TOKENS
        np.testing.assert_allclose(cracks[:, :2] * W, start + f[:, None] * (end - start), atol=1e-12)
        n = len(spec.tips())
        np.testing.assert_allclose(inp["tips"][:n] * W, spec.tips(), atol=1e-12)
        np.testing.assert_allclose(inp["dirs"][:n], spec.tip_directions(), atol=1e-15)
        np.testing.assert_array_equal(inp["tip_mask"], [1.0, float(n == 2)])


def test_folded_attention_equals_multi_head_attention():
    """The decoder's attention (heads block-diagonal, projections folded into keys and values)
    is the same multi-head attention as the plain scaled_dot_product_attention path."""
    from multiscale.fields.attention import _Attention
    torch.manual_seed(0)
    for heads in (1, 2, 4):
        att = _Attention(32, heads, kv_dim=48).double()
        x, kv = torch.randn(3, 70, 32, dtype=torch.float64), torch.randn(3, 16, 48, dtype=torch.float64)
        plain = att(x, kv)
        att.many_queries = True
        torch.testing.assert_close(att(x, kv), plain, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("decoder", [{}, {"decoder_block": 1, "activation": "gelu"}])
def test_export_load_round_trip_and_torchscript_equals_eager(tmp_path, decoder):
    torch.manual_seed(0)
    model = FieldPerceiver(**{**TINY, **decoder})
    report = {"validation": {"displacement_rel_l2": 0.1}, "epochs": 1, "n_train": 1, "seconds": 0.0}
    cfg = {"output": {"name": "tiny-fields", "model": str(tmp_path / "f.pt"), "description": ""}}
    path = export_model(model, cfg, report)
    loaded = multiscale.load(path)
    assert isinstance(loaded.metadata, FieldMetadata) and loaded.metadata.kind == "field"
    assert loaded.metadata.name == "tiny-fields" and loaded.metadata.architecture["dim"] == 16
    assert loaded.metadata.training["validation"]["displacement_rel_l2"] == 0.1
    spec = Specimen("ccp", 80.0, 120.0, 20.0, crack_angle=15.0, poisson_ratio=0.3)
    xy = np.random.default_rng(1).uniform([0, -60], [80, 60], (50, 2))
    inputs = batch_inputs([spec], [xy])
    eager, scripted = model(*inputs), loaded.module(*inputs)
    for key in ("displacements", "stresses", "k"):
        torch.testing.assert_close(scripted[key], eager[key], rtol=1e-5, atol=1e-6)
    assert torch.count_nonzero(eager["k"][0]) == 4  # two tips, two modes


def test_k_of_the_predicted_field_is_the_k_head(tmp_path):
    """With the smooth part switched off the field is the K head's Williams field: the
    interaction integral on it (autograd gradients, disc of 0.02 W) returns the K head's K_I
    and K_II; a random smooth part (no sqrt(r) features) adds an error that vanishes with the
    disc like sqrt(radius)."""
    from multiscale.fields.evaluate import k_from_field
    torch.manual_seed(3)
    model = FieldPerceiver(**TINY)
    report = {"validation": {}, "epochs": 0, "n_train": 0, "seconds": 0.0}
    spec = Specimen("ccp", 80.0, 120.0, 16.0, crack_angle=20.0, poisson_ratio=0.3, stress=1.5,
                    youngs_modulus=120.0)
    with torch.no_grad():
        model.head[-1].weight.zero_(), model.head[-1].bias.zero_()
        model.k_head[-1].bias.copy_(torch.tensor([1.1, 0.2, 0.9, -0.15]))
    path = export_model(model, {"output": {"name": "t", "model": str(tmp_path / "k.pt"),
                                           "description": ""}}, report)
    pred = FieldPredictor.load(path)
    head = pred.predict(spec, spec.tips())
    for tip in range(2):
        k1, k2 = k_from_field(pred, spec, tip)
        assert abs(k1 - head.k1[tip]) < 2e-3 * abs(head.k1[tip])
        assert abs(k2 - head.k2[tip]) < 2e-3 * abs(head.k1[tip])
    with torch.no_grad():   # a random smooth part: bounded stress at the tip, so its share of
        model.head[-1].weight.normal_(0, 0.3)   # the integral falls like sqrt(disc radius)
    pred = FieldPredictor.load(export_model(model, {"output": {"name": "t", "model": str(tmp_path / "r.pt"),
                                                               "description": ""}}, report))
    err = [abs(k_from_field(pred, spec, 0, radius=f * spec.width)[0] / head.k1[0] - 1) for f in (0.005, 0.00125)]
    assert 0 < err[1] < 0.6 * err[0]   # sqrt(1/4) = 0.5


def test_potential_file_is_not_a_field_predictor(tmp_path):
    from multiscale.potentials import LennardJones
    path = multiscale.export(LennardJones(["Ar"], 0.0104, 3.4, 8.5), tmp_path / "lj.pt")
    assert not isinstance(multiscale.load(path).metadata, FieldMetadata)
    with pytest.raises(ModelContractError, match="not a field predictor"):
        FieldPredictor.load(path)


def test_fields_scale_exactly_with_stress_modulus_and_width(tiny_model):
    pred = FieldPredictor.load(tiny_model[0])
    base = Specimen("sent", 100.0, 150.0, 35.0, crack_angle=10.0, stress=1.0, youngs_modulus=150.0)
    xy = np.random.default_rng(2).uniform([1, -70], [99, 70], (40, 2))
    p0 = pred.predict(base, xy)
    loaded = Specimen("sent", 100.0, 150.0, 35.0, crack_angle=10.0, stress=2.5, youngs_modulus=60.0)
    p1 = pred.predict(loaded, xy)
    np.testing.assert_allclose(p1.displacements, p0.displacements * 2.5 / 1.0 * 150.0 / 60.0, rtol=1e-6)
    np.testing.assert_allclose(p1.stresses, p0.stresses * 2.5, rtol=1e-6)
    np.testing.assert_allclose(p1.k1, p0.k1 * 2.5, rtol=1e-6)
    big = Specimen("sent", 300.0, 450.0, 105.0, crack_angle=10.0)
    p2 = pred.predict(big, 3 * xy)
    np.testing.assert_allclose(p2.displacements, 3 * p0.displacements, rtol=1e-5)
    np.testing.assert_allclose(p2.stresses, p0.stresses, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(p2.k1, p0.k1 * math.sqrt(3), rtol=1e-5)
    # one call for all three specimens gives each one's fields (frozen inference module)
    for one, batched in zip((p0, p1, p2), pred.predict_batch([base, loaded, big], [xy, xy, 3 * xy])):
        np.testing.assert_allclose(batched.stresses, one.stresses, rtol=1e-5, atol=1e-6 * np.abs(one.stresses).max())
        np.testing.assert_allclose(batched.k1, one.k1, rtol=1e-5)
    # and the frozen module is the file's module
    with torch.no_grad():
        direct = pred.module(*batch_inputs([base], [xy]))["stresses"][0].double().numpy() * base.stress
    np.testing.assert_allclose(p0.stresses, direct, rtol=1e-5, atol=1e-6 * np.abs(direct).max())


def test_training_reduces_held_out_error(fe_data, tmp_path):
    train_file, test_file = fe_data
    cfg = _config(tmp_path, train_file, test_file, epochs=60)
    torch.manual_seed(cfg["train"]["seed"])
    from multiscale.fields.train import build_model
    tt = to_tensors(fdata.read(train_file))
    before = validate(build_model(cfg["model"], tt), to_tensors(fdata.read(test_file)))
    after = train(cfg, progress=False)["validation"]
    assert after["displacement_rel_l2"] < 0.7 * before["displacement_rel_l2"]
    assert after["stress_rel_l2"] < 0.85 * before["stress_rel_l2"]
    # the checkpoint lets training resume where it stopped
    saved = torch.load(tmp_path / "ckpt.pt", weights_only=False)
    assert saved["state"]["epoch"] == 60 and len(saved["state"]["history"]) == 60


def test_evaluate_json_keys(tiny_model, fe_data, tmp_path):
    from multiscale.cli import main
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["fields", "evaluate", str(tiny_model[0]), "--data", str(fe_data[1]),
                     "--plots", str(tmp_path / "plots")]) == 0
    out = json.loads(buf.getvalue())
    for key in ("displacement_rel_l2", "stress_rel_l2_outside_r0", "k1_from_field_rel_error",
                "k1_field_integral_fe_disc_rel_error", "k1_from_head_rel_error", "k1_fit_on_fe_field_rel_error"):
        assert set(out[key]) == {"mean", "max"} and out[key]["mean"] >= 0
    assert out["r0_over_w"] == 0.02 and out["n_specimens"] == 3
    assert set(out["k1_field_integral_rel_error"]) == {"0.02", "0.01", "0.005", "0.0025"}
    assert (tmp_path / "plots" / "fields_0.png").stat().st_size > 10_000


def test_dataset_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="n >= 1"):
        fdata.generate(tmp_path / "x.h5", 0)
    with pytest.raises(FileNotFoundError, match="multiscale fields dataset"):
        fdata.read(tmp_path / "missing.h5")


@pytest.mark.slow
def test_shipped_model_meets_targets_on_held_out_fe(tmp_path):
    from multiscale.fields.evaluate import evaluate
    from multiscale.model.registry import model_path
    test = fdata.generate(tmp_path / "held_out.h5", 10, n_query=512, seed=777, progress=False)
    out = evaluate(model_path("crack-fields"), test, fe_check=False)
    assert out["displacement_rel_l2"]["mean"] <= 0.02
    assert out["stress_rel_l2_outside_r0"]["mean"] <= 0.05
    assert out["k1_from_head_rel_error"]["mean"] <= 0.03
    assert out["k1_from_field_rel_error"]["mean"] <= 0.03        # displacement fit of the field
    by_disc = out["k1_field_integral_rel_error"]                  # interaction integral: converges
    assert by_disc["0.0025"]["mean"] < by_disc["0.02"]["mean"]    # to the head's K as the disc shrinks


def test_compiled_predictor_equals_torchscript(tiny_model, fe_data, tmp_path):
    """`multiscale compile` of a predictor: predictions, K and `fields evaluate` (whose K integrals
    differentiate the TorchScript module stored in the .pt2) equal the .pt's; the coupled run's
    predictor continuum takes the .pt2."""
    from multiscale.cli import main
    from multiscale.coupling.continuum import PredictorContinuum
    from multiscale.reference.material import material
    pt = tiny_model[0]
    pt2 = tmp_path / "tiny.pt2"
    assert main(["compile", str(pt), "-o", str(pt2)]) == 0
    a, b = FieldPredictor.load(pt), FieldPredictor.load(pt2)
    assert b.compiled is not None and isinstance(b.module, torch.jit.ScriptModule)
    spec = Specimen("ccp", 120.0, 100.0, 25.0)
    xy = np.random.default_rng(1).uniform(-45, 45, (300, 2))
    pa, pb = a.predict(spec, xy), b.predict(spec, xy)
    for x, y in ((pa.displacements, pb.displacements), (pa.stresses, pb.stresses), (pa.k1, pb.k1)):
        assert np.abs(x - y).max() <= 1e-5 * np.abs(x).max()
    from multiscale.fields.evaluate import evaluate
    reports = [evaluate(path, fe_data[1], fe_check=False) for path in (pt, pt2)]
    for key in ("displacement_rel_l2", "k1_from_head_rel_error", "k1_field_integral_fe_disc_rel_error"):
        assert reports[1][key]["mean"] == pytest.approx(reports[0][key]["mean"], rel=1e-3, abs=1e-6), key
    options = {"kind": "sent", "width": 200.0, "height": 300.0, "crack_length": 60.0}
    ring = 30.0 * np.c_[np.cos(np.linspace(0, 6, 12)), np.sin(np.linspace(0, 6, 12))]
    u = [PredictorContinuum(material("sw"), {**options, "model": str(p)}).boundary_displacements(ring, 1.0, [0.0, 0.0])
         for p in (pt, pt2)]
    assert np.abs(u[1] - u[0]).max() <= 1e-5 * np.abs(u[0]).max()
