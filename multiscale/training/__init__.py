"""Training of models under the contract: datasets, batching, the training loop."""

from .data import GraphBatch, StructureDataset, read_structures, write_structures
from .trainer import TrainConfig, Trainer, train_from_config

__all__ = ["GraphBatch", "StructureDataset", "read_structures", "write_structures", "TrainConfig",
           "Trainer", "train_from_config"]
