"""Padding: maps padded along their spatial axes with a constant, their edge values, their
reflection or their wrap-around -- ONNX Pad's and PyTorch's padding modes. A fastdl
extension (Keras pads with zeros only: ZeroPadding1D/2D/3D); fastdl.io.load_onnx builds
it for Pad nodes ZeroPadding cannot express.
"""
import numpy as np

from fastdl import _validate as v
from fastdl.layers.reshaping import _ZeroPadding

# fastdl's mode names are ONNX's (NumPy's): PyTorch's 'replicate' is 'edge', its
# 'circular' is 'wrap'.
MODES = ("constant", "reflect", "edge", "wrap")


class Padding(_ZeroPadding):
    """Pads the spatial axes of (N, *S, C) (channels_last) or (N, C, *S) maps.

    padding: a (before, after) pair (or an int for both) per spatial axis; their number is
      the layer's rank (1 to 3).
    mode: 'constant' (`value` around the maps), 'reflect' (mirrored about the edge value,
      which is not repeated), 'edge' (the edge value repeated) or 'wrap' (the other end's
      values), as numpy.pad and ONNX Pad.
    value: the constant of mode 'constant'.
    It trains: each output's gradient goes to the input value it copies."""

    def __init__(self, padding, mode="constant", value=0.0, data_format=None, **kwargs):
        if not isinstance(padding, (tuple, list)) or not 1 <= len(padding) <= 3:
            raise ValueError(f"padding: expected a (before, after) pair or an int per "
                             f"spatial axis (1 to 3 of them), got {padding!r}")
        self.rank = len(padding)
        super().__init__(padding, data_format, **kwargs)
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {', '.join(map(repr, MODES))}, got "
                             f"{mode!r}")
        self.mode = mode
        self.value = v.real(value, "value")
        if mode != "constant" and self.value != 0.0:
            raise ValueError(f"value: only mode 'constant' pads with a value, got {value!r} "
                             f"with mode {mode!r}")

    def check_input(self, input_shape, first=False):
        super().check_input(input_shape, first)
        if self.mode in ("reflect", "wrap"):
            for size, pair in zip(self._spatial(input_shape), self.padding):
                if size is not None and (size < 2 if self.mode == "reflect" else size < 1) \
                        and any(pair):
                    self._refuse(input_shape, f"spatial extents of at least "
                                              f"{2 if self.mode == 'reflect' else 1} to "
                                              f"{self.mode}-pad")

    def _apply(self, x):  # x: (N, C, *S)
        if self.mode == "constant" and self.value == 0.0:
            return super()._apply(x)
        pads = [(0, 0), (0, 0)] + list(self.padding)
        if self.mode == "constant":
            return np.pad(x, pads, constant_values=np.float32(self.value))
        return np.ascontiguousarray(np.pad(x, pads, mode=self.mode))

    def _apply_backward(self, dy, shape):
        if self.mode == "constant":
            return super()._apply_backward(dy, shape)
        g = dy
        for axis, (n, pair) in enumerate(zip(shape[2:], self.padding)):
            if any(pair):
                # sources[j]: the input index output j copies; the gradient sums over them.
                sources = np.pad(np.arange(n), pair, mode=self.mode)
                gather = np.zeros((sources.size, n), np.float32)
                gather[np.arange(sources.size), sources] = 1.0
                g = np.moveaxis(np.moveaxis(g, 2 + axis, -1) @ gather, -1, 2 + axis)
        return np.ascontiguousarray(g, np.float32)

    def get_config(self):
        config = {**super().get_config(), "mode": self.mode}
        if self.value != 0.0:
            config["value"] = self.value
        return config
