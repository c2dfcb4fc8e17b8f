import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the test helpers beside this file
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def si_sw_file() -> Path:
    from multiscale.paths import SILICON_SW, lammps_potential
    return lammps_potential(SILICON_SW)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")
