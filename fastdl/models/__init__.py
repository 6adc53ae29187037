"""fastdl.models: Sequential and the functional Model (Keras 3's), which are layers too;
load_model for saved models and Keras files."""
from fastdl.models.model import Model
from fastdl.models.saving import load_model
from fastdl.models.sequential import Sequential

__all__ = ["Model", "Sequential", "load_model"]
