"""edge_s2s.train: PyTorch datasets, the attention encoder-decoder and its training loop."""

from .core.checkpoint import CheckpointError
from .core.errors import DataError, RunError
from .translate.config import ModelConfig, TrainConfig
from .translate.loop import train_translator

__all__ = ["ModelConfig", "TrainConfig", "train_translator", "CheckpointError", "DataError", "RunError"]
