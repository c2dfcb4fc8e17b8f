"""Datasets, the training loop, checkpoints and oracles."""

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

import multiscale
from multiscale.reference.oracles import label, lammps_oracle, xtb_oracle
from multiscale.potentials import MessagePassingPotential, StillingerWeber
from multiscale.learning import StructureDataset, TrainConfig, Trainer, read_structures, write_structures
from multiscale.learning.config import ConfigError, read_config


@pytest.fixture(scope="module")
def si_data():
    rng = np.random.default_rng(0)
    structures = []
    for k in range(24):
        atoms = bulk("Si", "diamond", a=5.431, cubic=True)
        atoms.set_cell(atoms.cell.array * (1 + rng.uniform(-0.03, 0.03)), scale_atoms=True)
        atoms.rattle(0.12, seed=k)
        structures.append(atoms)
    return label(structures, lammps_oracle(), progress=lambda _m: None)


def test_lammps_oracle_is_stillinger_weber(si_data, si_sw_file, tmp_path):
    model = multiscale.export(StillingerWeber(si_sw_file, ["Si"]), tmp_path / "sw.pt")
    atoms = si_data[3].copy()
    atoms.calc = multiscale.MultiscaleCalculator(model)
    assert atoms.get_potential_energy() == pytest.approx(si_data[3].get_potential_energy(), rel=1e-10)
    assert np.allclose(atoms.get_forces(), si_data[3].get_forces(), atol=1e-9)


def test_xtb_oracle_charge_and_spin():
    water = label([molecule("H2O")], xtb_oracle(), progress=lambda _m: None)[0]
    cation = molecule("H2O")
    cation.info.update(charge=1, spin=2)
    cation = label([cation], xtb_oracle(), progress=lambda _m: None)[0]
    # GFN2-xTB: neutral water near -137.97 eV; removing an electron costs several eV
    assert water.get_potential_energy() == pytest.approx(-137.97, abs=0.05)
    assert cation.get_potential_energy() - water.get_potential_energy() > 5.0


@pytest.mark.parametrize("suffix", [".extxyz", ".h5"])
def test_structure_files_round_trip(si_data, tmp_path, suffix):
    path = write_structures(tmp_path / f"data{suffix}", si_data[:5])
    back = read_structures(path)
    assert len(back) == 5
    for a, b in zip(si_data[:5], back):
        assert np.allclose(a.positions, b.positions) and np.allclose(a.cell.array, b.cell.array)
        assert a.get_potential_energy() == pytest.approx(b.get_potential_energy(), rel=1e-12)
        assert np.allclose(a.get_forces(), b.get_forces())


def test_training_reduces_error_and_resumes_exactly(si_data, tmp_path):
    dataset = StructureDataset(si_data, ["Si"], cutoff=3.8)

    def fresh():
        return MessagePassingPotential(["Si"], cutoff=3.8, hops=1, features=8, seed=0).double()

    model = fresh()
    config = TrainConfig(epochs=6, batch_size=4, learning_rate=3e-3, validation_fraction=0.25, seed=2)
    trainer = Trainer(model, dataset, config, log=lambda _m: None)
    before = trainer.evaluate(trainer.validation)
    after = trainer.run()
    assert after["force_rmse_eV_per_A"] < before["force_rmse_eV_per_A"]

    # interrupted after 3 epochs and resumed from the checkpoint == uninterrupted
    ckpt = tmp_path / "ckpt.pt"
    first = Trainer(fresh(), dataset, TrainConfig(**{**config.__dict__, "epochs": 3, "checkpoint": str(ckpt)}),
                    log=lambda _m: None)
    first.run()
    resumed_model = fresh()
    resumed = Trainer(resumed_model, dataset, TrainConfig(**{**config.__dict__, "checkpoint": str(ckpt)}),
                      log=lambda _m: None)
    resumed.run()
    assert [round(r["train_loss"], 12) for r in resumed.history] == \
        [round(r["train_loss"], 12) for r in trainer.history]
    for a, b in zip(model.state_dict().values(), resumed_model.state_dict().values()):
        assert torch.equal(a, b)


class _RunsOnLoad:
    """An object whose unpickling would run code (os.system and the like)."""

    def __reduce__(self):
        return (print, ("code ran while loading a checkpoint",))


def test_checkpoints_are_plain_tensors_and_settings(si_data, tmp_path):
    """A checkpoint loads with torch.load(weights_only=True): one that needs unpickling arbitrary
    objects (here, one whose loading calls a function) is refused, not executed."""
    dataset = StructureDataset(si_data, ["Si"], cutoff=3.8)
    ckpt = tmp_path / "ckpt.pt"
    config = TrainConfig(epochs=1, batch_size=4, validation_fraction=0.25, checkpoint=str(ckpt))
    model = MessagePassingPotential(["Si"], cutoff=3.8, hops=1, features=8, seed=0).double()
    Trainer(model, dataset, config, log=lambda _m: None).run()
    torch.load(ckpt, weights_only=True)          # what the trainer writes is plain data
    state = torch.load(ckpt, weights_only=True)
    state["history"].append(_RunsOnLoad())
    torch.save(state, ckpt)
    with pytest.raises(Exception, match="Weights only load failed"):
        Trainer(model, dataset, config, log=lambda _m: None).load_checkpoint()


def test_config_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[data]\npath = "x.xyz"\n[model]\nkind = "transformer"\nelements = ["Si"]\n')
    with pytest.raises(ConfigError, match="kind must be one of"):
        read_config(bad)
    bad.write_text('[data]\npath = "x.xyz"\n[model]\nkind = "ani"\nelements = ["Si"]\n[training]\nepoch = 3\n')
    with pytest.raises(ConfigError, match=r"unknown \[training\] key\(s\) \['epoch'\]"):
        read_config(bad)
    bad.write_text('[dta]\npath = "x.xyz"\n')
    with pytest.raises(ConfigError, match=r"unknown section\(s\) \['dta'\]"):
        read_config(bad)
    bad.write_text('[data]\npath = "x.xyz"\n[model]\nkind = "ani"\nelements = ["Si"]\nhiden = [8]\n')
    with pytest.raises(ConfigError, match=r"unknown \[model\] key\(s\) \['hiden'\] for kind 'ani'.*'hidden'"):
        read_config(bad)


def test_training_stress_equals_engine_stress(si_data, si_sw_file, tmp_path):
    # the stress the loss sees is the ASE calculator's (edge-gradient virial / volume), in GPa;
    # and the SW oracle labels periodic cells with LAMMPS' own stress
    from multiscale.learning.trainer import EV_PER_A3_TO_GPA, predict
    model = StillingerWeber(si_sw_file, ["Si"]).double()
    path = write_structures(tmp_path / "si.h5", si_data[:4])
    back = read_structures(path)
    assert np.allclose(back[0].get_stress(), si_data[0].get_stress(), rtol=0, atol=1e-12)
    dataset = StructureDataset(back, ["Si"], model.metadata().cutoff)
    sigma = predict(model, dataset.batch([0, 1, 2, 3]), create_graph=False, stress=True).stress
    for k in range(4):
        voigt = sigma[k].detach().numpy()[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        # 1e-7 relative: ASE's LAMMPSlib converts LAMMPS' bar with its own unit constants
        assert np.allclose(voigt, EV_PER_A3_TO_GPA * si_data[k].get_stress(), rtol=1e-6, atol=1e-5)
    config = TrainConfig(epochs=1, batch_size=2, stress_weight=0.01)
    from multiscale.learning.trainer import evaluate
    assert evaluate(model, dataset, range(4))["stress_rmse_GPa"] < 1e-5
    assert config.stress_weight == 0.01


MP_CONFIG = """[data]
path = "data.h5"
[model]
kind = "message-passing"
elements = ["Si"]
cutoff = 3.8
hops = 1
features = 8
{start}
[training]
epochs = 2
batch_size = 4
learning_rate = 3e-3
validation_fraction = 0.25
{fine}
[output]
model = "{name}.pt"
folder = "{name}"
"""


def test_start_from_a_model_file_and_a_fine_tune_stage(si_data, tmp_path):
    """[model] start_from takes a model file's parameters; [fine_tune] is a second stage from
    the first one's best weights, with its own checkpoint, counted in the same history."""
    import json
    from multiscale.learning.run import train_from_config
    write_structures(tmp_path / "data.h5", si_data)
    (tmp_path / "a.toml").write_text(MP_CONFIG.format(start="", fine="", name="a"))
    a = train_from_config(tmp_path / "a.toml", log=lambda _m: None)
    # no epochs from a's parameters: the same model
    (tmp_path / "b.toml").write_text(MP_CONFIG.format(start='start_from = "a.pt"', fine="", name="b")
                                     .replace("epochs = 2", "epochs = 0"))
    b = train_from_config(tmp_path / "b.toml", log=lambda _m: None)
    atoms = si_data[5].copy()
    energies = []
    for path in (a, b):
        atoms.calc = multiscale.MultiscaleCalculator(path)
        energies.append(atoms.get_potential_energy())
    assert energies[0] == energies[1]
    # two stages: the second with a stress weight, continuing the epoch count
    fine = "[fine_tune]\nepochs = 3\nstress_weight = 0.1\nlearning_rate = 1e-3"
    (tmp_path / "c.toml").write_text(MP_CONFIG.format(start='start_from = "a.pt"', fine=fine, name="c"))
    cfg = read_config(tmp_path / "c.toml")
    assert cfg.fine_tune.stress_weight == 0.1 and cfg.fine_tune.batch_size == 4 and cfg.training.stress_weight == 0
    train_from_config(tmp_path / "c.toml", log=lambda _m: None)
    history = json.loads((tmp_path / "c" / "history.json").read_text())["history"][0]
    assert [(r["epoch"], r["stage"]) for r in history] == \
        [(1, "training"), (2, "training"), (3, "fine_tune"), (4, "fine_tune"), (5, "fine_tune")]
    assert (tmp_path / "c" / "member0.ckpt").is_file() and (tmp_path / "c" / "member0.fine_tune.ckpt").is_file()


def test_start_from_and_fine_tune_errors(tmp_path, si_data):
    from multiscale.learning.run import train_from_config
    write_structures(tmp_path / "data.h5", si_data[:8])
    bad = tmp_path / "bad.toml"
    bad.write_text(MP_CONFIG.format(start='start_from = "missing.pt"', fine="", name="x"))
    with pytest.raises(ConfigError, match="start_from = .*missing.pt.* is not a file"):
        read_config(bad)
    bad.write_text(MP_CONFIG.format(start="", fine="[fine_tune]\nepoch = 3", name="x"))
    with pytest.raises(ConfigError, match=r"unknown \[fine_tune\] key\(s\) \['epoch'\]"):
        read_config(bad)
    bad.write_text(MP_CONFIG.format(start="", fine='[fine_tune]\ncheckpoint = "x.ckpt"', name="x"))
    with pytest.raises(ConfigError, match=r"\[fine_tune\] takes no checkpoint"):
        read_config(bad)
    other = multiscale.export(MessagePassingPotential(["Si"], cutoff=3.8, hops=1, features=16).double(),
                              tmp_path / "wide.pt")
    bad.write_text(MP_CONFIG.format(start=f'start_from = "{other.name}"', fine="", name="x"))
    with pytest.raises(ConfigError, match="is not the model this configuration builds.*shapes differ"):
        train_from_config(bad, log=lambda _m: None)
