"""pair_style multiscale refuses bad input with a LAMMPS error that names the fix."""

import pytest

import multiscale
from lmp_runs import run
from multiscale.potentials import LennardJones, MessagePassingPotential

pytestmark = pytest.mark.mpi


@pytest.fixture(scope="module")
def files(model_dir):
    corrupt = model_dir / "corrupt.pt"
    corrupt.write_bytes(b"not a model at all")
    return {
        "lj": multiscale.export(LennardJones(["Ar"], 0.0104, 3.4, 6.0), model_dir / "lj_err.pt"),
        "mp": multiscale.export(MessagePassingPotential(["Ar"], cutoff=4.0, hops=2, features=8),
                                model_dir / "mp_err.pt"),
        "corrupt": corrupt,
    }


def script(pair_lines, units="metal", newton="on", extra=()):
    return "\n".join([f"units {units}", f"newton {newton}", "atom_style atomic", "lattice fcc 5.26",
                      "region box block 0 3 0 3 0 3", "create_box 2 box", "create_atoms 1 box",
                      "mass * 39.9", *extra, *pair_lines, "run 0"]) + "\n"


CASES = {
    "missing file": (lambda f: ["pair_style multiscale /nonexistent/model.pt", "pair_coeff * * Ar Ar"], {},
                     "cannot read model file /nonexistent/model.pt"),
    "corrupt file": (lambda f: [f"pair_style multiscale {f['corrupt']}", "pair_coeff * * Ar Ar"], {},
                     "is not a TorchScript archive"),
    "unknown element": (lambda f: [f"pair_style multiscale {f['lj']}", "pair_coeff * * Ar Kr"], {},
                        "Kr"),
    "wrong pair_coeff count": (lambda f: [f"pair_style multiscale {f['lj']}", "pair_coeff * * Ar"], {},
                               "pair_coeff"),
    "all types unmapped": (lambda f: [f"pair_style multiscale {f['lj']}", "pair_coeff * * NULL NULL"], {},
                           "NULL"),
    "newton off": (lambda f: [f"pair_style multiscale {f['lj']}", "pair_coeff * * Ar Ar"],
                   {"newton": "off"}, "newton pair on"),
    "units": (lambda f: [f"pair_style multiscale {f['lj']}", "pair_coeff * * Ar Ar"],
              {"units": "real"}, "units metal"),
    "unknown keyword": (lambda f: [f"pair_style multiscale {f['lj']} temperature 300", "pair_coeff * * Ar Ar"],
                        {}, "unknown keyword temperature"),
    "ghost shell": (lambda f: [f"pair_style multiscale {f['mp']}", "pair_coeff * * Ar Ar"],
                    {"extra": ["comm_modify cutoff 5.0"]}, "comm_modify cutoff"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_error_message(tmp_path, files, case):
    pair_lines, options, message = CASES[case]
    proc = run(script(pair_lines(files), **options), tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "ERROR" in out and message in out, out[-2000:]
    for crash in ("terminate called", "Segmentation fault", "Traceback", "c10::Error", "Aborted"):
        assert crash not in out, out[-2000:]
