"""Lambda: a Python function as a layer."""
import inspect

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
    shape, or None to learn it by calling the function on a batch of one.

    Training (a fastdl extension: fastdl has no autodiff to differentiate a Python
    function): `gradient`, a callable or registered name, gradient(inputs, dy, **arguments)
    -> the gradient of the inputs (an array of each input's shape; a list for several
    inputs) from dy, the gradient of the output. Without it, fit through the layer raises
    NotImplementedError naming it.

    Checked: that function(inputs, **arguments) is a call its signature takes, and that what
    it returns is a real array of that output shape (ValueError / TypeError naming the
    layer); an exception the function raises itself is the caller's, and propagates."""

    def __init__(self, function, output_shape=None, mask=None, arguments=None, gradient=None,
                 **kwargs):
        super().__init__(**kwargs)
        function = _resolved(function, "function")
        if mask is not None:
            raise ValueError("mask: masking is not supported by fastdl")
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict) or not all(isinstance(k, str) for k in arguments):
            raise TypeError(f"arguments: expected a dict of keyword arguments (str keys), "
                            f"got {arguments!r}"[:300])
        self.function = function
        self.arguments = dict(arguments)
        self._callable_as("function", function, self.arguments)
        self.gradient = None if gradient is None else _resolved(gradient, "gradient")
        if self.gradient is not None:
            self._callable_as("gradient", self.gradient, self.arguments, ("inputs", "dy"))
        if output_shape is not None:
            if callable(output_shape):
                self._callable_as("output_shape", output_shape, {})
            else:
                output_shape = _shape(output_shape, "output_shape")
        self._output_shape_arg = output_shape
        self._shapes = {}  # input shape -> output shape (Keras', batch first)

    def _callable_as(self, arg, fn, arguments, positional=("inputs",)):
        """TypeError naming `arg` and the layer unless fn(*positional, **arguments) is a call
        its signature takes (the user's TypeError from inside fn stays theirs)."""
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):  # no signature to read (some builtins): call it
            return
        try:
            signature.bind(*[None] * len(positional), **arguments)
        except TypeError as exc:
            raise TypeError(f"{arg}: {self.name} (Lambda) calls it as "
                            f"{getattr(fn, '__name__', 'fn')}({', '.join(positional)}"
                            f"{''.join(f', {k}=...' for k in arguments)}), which its "
                            f"signature {signature} does not take: {exc}") from None

    def _output_array(self, y):
        """The function's result as a float32 array; TypeError / ValueError naming the layer
        for anything else."""
        what = f"{self.name} (Lambda): its function's output"
        try:
            return v.float32_array(y, what)
        except ValueError as exc:  # a ragged list, say
            raise ValueError(f"{what}: expected an array, got {type(y).__name__} ({exc})") \
                from None

    def compute_output_shape(self, input_shape):
        """The output shape for `input_shape`, computed once per input shape (the forward
        pass checks the function's output against it)."""
        key = (tuple(map(tuple, input_shape)) if isinstance(input_shape, list)
               else tuple(input_shape))
        shapes = self.__dict__.setdefault("_shapes", {})
        shape = shapes.get(key)
        if shape is None:
            shape = self._compute_output_shape(input_shape)
            if len(shapes) > 64:
                shapes.clear()
            shapes[key] = shape
        return shape

    def _compute_output_shape(self, input_shape):
        arg = self._output_shape_arg
        if callable(arg):
            shape = arg(input_shape)
            if not isinstance(shape, (tuple, list)) or not shape:
                raise TypeError(f"output_shape: {self.name} (Lambda) expected the function to "
                                f"return a shape (batch first), got {shape!r}"[:300])
            return (None,) + _shape(shape[1:], "output_shape")
        if arg is not None:
            return (None,) + arg
        probe = ([np.zeros((1,) + tuple(s or 1 for s in shape[1:]), np.float32)
                  for shape in input_shape] if isinstance(input_shape, list) else
                 np.zeros((1,) + tuple(s or 1 for s in input_shape[1:]), np.float32))
        out = self._output_array(self.function(probe, **self.arguments))
        if out.ndim == 0:
            raise ValueError(f"{self.name} (Lambda): its function returned a scalar for a "
                             f"batch of one; expected an array with the batch axis first")
        known = input_shape if not isinstance(input_shape, list) else input_shape[0]
        return (None,) + tuple(None if i < len(known) - 1 and known[i + 1] is None else s
                               for i, s in enumerate(out.shape[1:]))

    def _forward(self, x, layout):
        if isinstance(x, list):
            x = [L.to_keras(a, l) for a, l in zip(x, layout)]
            shape = [(None,) + a.shape[1:] for a in x]
            n = x[0].shape[0]
        else:
            x = L.to_keras(x, layout)
            shape, n = (None,) + x.shape[1:], x.shape[0]
        y = self._output_array(self.function(x, **self.arguments))
        want = self.compute_output_shape(shape)
        if (y.ndim != len(want) or y.shape[0] != n or
                any(w is not None and w != s for w, s in zip(want[1:], y.shape[1:]))):
            source = ("output_shape" if self._output_shape_arg is not None else
                      "its output for a batch of one")
            raise ValueError(f"{self.name} (Lambda): its function returned shape {y.shape} "
                             f"for a batch of {n}; expected {(n,) + tuple(want[1:])} (from "
                             f"{source})")
        return np.ascontiguousarray(y), L.KERAS

    def _train_forward(self, x, training):
        if self.gradient is None:
            raise NotImplementedError(f"{self.name} (Lambda): training through a Lambda "
                                      f"needs its gradient: Lambda(fn, gradient=...)")
        y, _ = self._forward(x, [L.KERAS] * len(x) if isinstance(x, list) else L.KERAS)
        return y, x

    def _backward(self, dy, x, grads):
        dx = self.gradient(x, dy, **self.arguments)
        several = isinstance(x, list)
        if several != isinstance(dx, (list, tuple)) or (several and len(dx) != len(x)):
            raise ValueError(f"{self.name} (Lambda): its gradient returned "
                             f"{type(dx).__name__}; expected "
                             f"{f'a list of {len(x)} arrays' if several else 'an array'}")
        out = [self._output_array(g) for g in (dx if several else [dx])]
        for g, a in zip(out, x if several else [x]):
            if g.shape != a.shape:
                raise ValueError(f"{self.name} (Lambda): its gradient returned shape "
                                 f"{g.shape} for an input of shape {a.shape}")
        return out if several else out[0]

    def get_config(self):
        names = _registered_name(self.function)
        if names is None:
            raise ValueError(f"{self.name} (Lambda): its function "
                             f"{getattr(self.function, '__name__', self.function)!r} is not "
                             f"registered, and fastdl stores no code: register it with "
                             f"fastdl.utils.get_custom_objects()['name'] = fn")
        shape = self._output_shape_arg
        if callable(shape):
            raise ValueError(f"{self.name} (Lambda): a callable output_shape cannot be "
                             f"saved; give a tuple")
        config = {**super().get_config(), "function": names, "output_shape": shape,
                  "arguments": self.arguments}
        if self.gradient is not None:
            config["gradient"] = _registered_name(self.gradient)
            if config["gradient"] is None:
                raise ValueError(f"{self.name} (Lambda): its gradient "
                                 f"{getattr(self.gradient, '__name__', self.gradient)!r} is "
                                 f"not registered: register it with "
                                 f"fastdl.utils.get_custom_objects()['name'] = fn")
        return config


def _resolved(fn, arg):
    """A callable, or the function registered under the name `fn`."""
    if isinstance(fn, str):
        if fn not in _registry():
            raise ValueError(f"{arg}: no function is registered as {fn!r} "
                             f"(fastdl.utils.get_custom_objects()[{fn!r}] = fn)")
        fn = _registry()[fn]
    if not callable(fn):
        raise TypeError(f"{arg}: expected a callable or a registered name, got "
                        f"{type(fn).__name__}")
    return fn


def _registered_name(fn):
    """The first name `fn` is registered under, or None."""
    return next((name for name, f in _registry().items() if f is fn), None)


def _shape(value, name):
    """A shape without the batch axis (an int or a sequence of ints >= 0 or None) as a
    tuple; TypeError / ValueError naming the argument."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, (tuple, list)):
        raise TypeError(f"{name}: expected a tuple of ints (without the batch axis), got "
                        f"{value!r}"[:300])
    return tuple(None if s is None else v.integer(s, name, minimum=0, maximum=v.MAX_AXIS)
                 for s in value)
