"""The model file: the contract every potential and field predictor satisfies, the one
loader and exporter of model files, and the registry of the files shipped with the package.

Lowest layer of multiscale: it imports nothing else of the package (see ARCHITECTURE.md).
"""

from .artifact import LoadedModel, export, load
from .contract import FieldMetadata, ModelContractError, ModelMetadata
from .registry import model_path, resolve, shipped_models

__all__ = ["LoadedModel", "export", "load", "FieldMetadata", "ModelContractError", "ModelMetadata",
           "model_path", "resolve", "shipped_models"]
