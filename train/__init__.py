"""edge_s2s.train: PyTorch datasets, the attention encoder-decoder and its training loop."""

from .checkpoint import CheckpointError
from .config import ModelConfig, TrainConfig
from .data import DataError
from .loop import RunError, train_translator

__all__ = ["ModelConfig", "TrainConfig", "train_translator", "CheckpointError", "DataError", "RunError"]
