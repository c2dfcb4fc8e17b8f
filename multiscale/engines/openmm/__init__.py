"""OpenMM integration: any multiscale model as an openmm-torch ``TorchForce``.

    from multiscale.engines.openmm import create_force   # or: from multiscale_openmm import ...
    system.addForce(create_force("model.pt", topology))

or through openmm-ml: ``MLPotential("multiscale", modelFile="model.pt")``.
"""

from .force import create_force, create_module, create_python_force

__all__ = ["create_force", "create_module", "create_python_force"]
