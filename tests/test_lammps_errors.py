"""pair_style multiscale refuses bad input with a LAMMPS error that names the fix.

Every case asserts the pair style's own words on LAMMPS' ERROR line (not on the echoed
"Last command:" line, which repeats the input), so each fails if its check is removed."""

import pytest

import multiscale
from bad_metadata import CASES as BAD_METADATA, POTENTIAL_ENGINES_ONLY, write_case
from lmp_runs import run
from multiscale.model.registry import model_path
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
        "field": model_path("crack-fields"),
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
                        "pair_coeff: element Kr (atom type 2) is not in model"),
    "wrong pair_coeff count": (lambda f: [f"pair_style multiscale {f['lj']}", "pair_coeff * * Ar"], {},
                               "one element or NULL per atom type: 2 atom types, but 1 element arguments"),
    "all types unmapped": (lambda f: [f"pair_style multiscale {f['lj']}", "pair_coeff * * NULL NULL"], {},
                           "maps atom type 1 to NULL, but pair_style multiscale is the only pair style"),
    "field predictor": (lambda f: [f"pair_style multiscale {f['field']}", "pair_coeff * * Ar Ar"], {},
                        "is a crack-field predictor, not an interatomic potential"),
    "newton off": (lambda f: [f"pair_style multiscale {f['lj']}", "pair_coeff * * Ar Ar"],
                   {"newton": "off"}, "newton pair on"),
    "units": (lambda f: [f"pair_style multiscale {f['lj']}", "pair_coeff * * Ar Ar"],
              {"units": "lj"}, "supports `units metal` (Å, eV) and `units real` (Å, kcal/mol), not units lj"),
    "unknown keyword": (lambda f: [f"pair_style multiscale {f['lj']} temperature 300", "pair_coeff * * Ar Ar"],
                        {}, "unknown keyword temperature"),
    "ghost shell": (lambda f: [f"pair_style multiscale {f['mp']}", "pair_coeff * * Ar Ar"],
                    {"extra": ["comm_modify cutoff 5.0"]},
                    "needs a ghost shell of 10 Å (hops x cutoff + skin = 2 x 4 + 2), but comm_modify cutoff "
                    "is 5: use `comm_modify cutoff 10`"),
}

# a second atom on the lattice site at the origin (atom 1): the model's energy would be NaN
COINCIDENT = ("atoms 1 and 109 are 0 Å apart, closer than 1e-08 Å: the model's energy is not defined "
              "for coincident atoms; remove one of them (e.g. `delete_atoms overlap")


@pytest.mark.parametrize("case", list(CASES))
def test_error_message(tmp_path, files, case):
    pair_lines, options, message = CASES[case]
    proc = run(script(pair_lines(files), **options), tmp_path)
    assert_lammps_error(proc, message)


@pytest.mark.parametrize("ranks", [1, 2])
@pytest.mark.parametrize("model", ["lj", "mp"])
def test_coincident_atoms_are_named(tmp_path, files, model, ranks):
    lines = [f"pair_style multiscale {files[model]}", "pair_coeff * * Ar Ar"]
    proc = run(script(lines, extra=["create_atoms 1 single 0 0 0"]), tmp_path, ranks)
    assert_lammps_error(proc, COINCIDENT)


def error_lines(proc) -> str:
    """LAMMPS' ERROR lines of a run (its own message, without the echoed input)."""
    out = proc.stdout + proc.stderr
    return "\n".join(line for line in out.splitlines() if line.startswith("ERROR"))


def assert_lammps_error(proc, message: str) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-2000:]
    assert message in error_lines(proc), out[-2000:]
    for crash in ("terminate called", "Segmentation fault", "Traceback", "c10::Error", "Aborted"):
        assert crash not in out, out[-2000:]


@pytest.fixture(scope="module")
def bad_files(model_dir, files):
    folder = model_dir / "bad_metadata"
    folder.mkdir(exist_ok=True)
    return {name: write_case(files["lj"], name, folder) for name in BAD_METADATA}


@pytest.mark.parametrize("case", list(BAD_METADATA))
def test_bad_metadata_is_refused_by_both_loaders_in_the_same_words(tmp_path, bad_files, case):
    """tests/bad_metadata.py: one table, multiscale.load (or, for a valid file of another kind,
    the ASE calculator) and the plugin."""
    _, python_phrase, plugin_phrase = BAD_METADATA[case]
    with pytest.raises(multiscale.ModelContractError) as err:
        if case in POTENTIAL_ENGINES_ONLY:
            assert multiscale.load(bad_files[case]).metadata.kind == "field"
            multiscale.MultiscaleCalculator(bad_files[case])
        else:
            multiscale.load(bad_files[case])
    assert python_phrase in str(err.value), str(err.value)
    proc = run(script([f"pair_style multiscale {bad_files[case]}", "pair_coeff * * Ar Ar"]), tmp_path)
    assert_lammps_error(proc, plugin_phrase)
