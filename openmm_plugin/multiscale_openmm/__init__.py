"""``import multiscale_openmm`` kept for existing scripts: the OpenMM adapter lives in
:mod:`multiscale.engines.openmm`.

    from multiscale_openmm import create_force
"""

from multiscale.engines.openmm import create_force, create_module, create_python_force

__all__ = ["create_force", "create_module", "create_python_force"]
