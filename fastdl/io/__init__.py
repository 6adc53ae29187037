"""fastdl.io: models from other libraries' files and objects -- Keras 3 `.keras` archives
and `.weights.h5` files (load_keras; needs h5py), PyTorch nn.Sequential modules
(from_torch; needs torch), ONNX models (load_onnx; needs onnx)."""
from fastdl.io.keras import load_keras
from fastdl.io.onnx import load_onnx
from fastdl.io.torch import from_torch

__all__ = ["from_torch", "load_keras", "load_onnx"]
