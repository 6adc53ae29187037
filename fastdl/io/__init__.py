"""fastdl.io: models from other libraries' files and objects -- Keras 3 `.keras` archives
and `.weights.h5` files (load_keras; needs h5py)."""
from fastdl.io.keras import load_keras

__all__ = ["load_keras"]
