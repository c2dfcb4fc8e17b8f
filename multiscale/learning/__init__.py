"""Learning: datasets of labelled structures, batching, the training loop and its TOML config,
active learning, transfer learning, and the build of the shipped silicon model."""

from .data import GraphBatch, StructureDataset, read_structures, write_structures
from .run import train_from_config
from .trainer import TrainConfig, Trainer

__all__ = ["GraphBatch", "StructureDataset", "read_structures", "write_structures", "TrainConfig",
           "Trainer", "train_from_config"]
