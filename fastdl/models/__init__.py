"""fastdl.models: Sequential (the functional Model, saving and loading come next)."""
from fastdl.models.sequential import Sequential

__all__ = ["Sequential"]
