"""fastdl.models: Sequential and the functional Model (Keras 3's), which are layers too."""
from fastdl.models.model import Model
from fastdl.models.sequential import Sequential

__all__ = ["Model", "Sequential"]
