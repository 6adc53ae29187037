"""Lambda: a Python function as a layer."""
import numpy as np

from fastdl import _validate as v
from fastdl.layers import layout as L
from fastdl.layers.base import Layer


def _registry():
    from fastdl.utils import get_custom_objects
    return get_custom_objects()


class Lambda(Layer):
    """function(x, **arguments) on Keras-layout NumPy arrays (a list for several inputs).

    `function`: a callable, or the name it is registered under
    (fastdl.utils.get_custom_objects()[name] = fn). Configs and saved models name the
    function by that registered name -- no code is stored -- so saving a Lambda needs its
    function registered. output_shape: a tuple (without the batch), a function of the input
    shape, or None to learn it by calling the function on a batch of one."""

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(function, str):
            if function not in _registry():
                raise ValueError(f"function: no function is registered as {function!r} "
                                 f"(fastdl.utils.get_custom_objects()[{function!r}] = fn)")
            function = _registry()[function]
        if not callable(function):
            raise TypeError(f"function: expected a callable or a registered name, got "
                            f"{type(function).__name__}")
        if mask is not None:
            raise ValueError("mask: masking is not supported by fastdl")
        self.function = function
        self.arguments = dict(arguments or {})
        if output_shape is not None and not callable(output_shape):
            output_shape = tuple(output_shape)
        self._output_shape_arg = output_shape

    def compute_output_shape(self, input_shape):
        arg = self._output_shape_arg
        if callable(arg):
            return tuple(arg(input_shape))
        if arg is not None:
            return (input_shape[0] if not isinstance(input_shape, list) else None,) + arg
        probe = ([np.zeros((1,) + tuple(s or 1 for s in shape[1:]), np.float32)
                  for shape in input_shape] if isinstance(input_shape, list) else
                 np.zeros((1,) + tuple(s or 1 for s in input_shape[1:]), np.float32))
        out = np.asarray(self.function(probe, **self.arguments))
        known = input_shape if not isinstance(input_shape, list) else input_shape[0]
        return (None,) + tuple(None if i < len(known) - 1 and known[i + 1] is None else s
                               for i, s in enumerate(out.shape[1:]))

    def _forward(self, x, layout):
        if isinstance(x, list):
            x = [L.to_keras(a, l) for a, l in zip(x, layout)]
        else:
            x = L.to_keras(x, layout)
        y = v.float32_array(self.function(x, **self.arguments), f"{self.name} output")
        return np.ascontiguousarray(y), L.KERAS

    def get_config(self):
        names = [name for name, fn in _registry().items() if fn is self.function]
        if not names:
            raise ValueError(f"{self.name} (Lambda): its function "
                             f"{getattr(self.function, '__name__', self.function)!r} is not "
                             f"registered, and fastdl stores no code: register it with "
                             f"fastdl.utils.get_custom_objects()['name'] = fn")
        shape = self._output_shape_arg
        if callable(shape):
            raise ValueError(f"{self.name} (Lambda): a callable output_shape cannot be "
                             f"saved; give a tuple")
        return {**super().get_config(), "function": names[0], "output_shape": shape,
                "arguments": self.arguments}
