"""Activations by their Keras names, and custom ones registered by name.

`get(identifier)` turns a name (as Keras spells it), None, a registered name or any Python
callable into an `Activation`: `fused` is the name of the kernels' fused epilogue that
computes it (a convolution or dense plan applies it in its write-back) or None, and
calling it applies it to a float32 array. Custom functions take and return arrays; they
are found by name once registered (`register`, or `fastdl.utils.get_custom_objects()`,
as `keras.utils.get_custom_objects()`).
"""
import inspect
import math

import numpy as np

from fastdl import _validate as v, ops


class Activation:
    """A resolved activation: `name` (how configs spell it), `fused` (the kernels' epilogue
    name, or None) with its parameter `alpha`, and __call__ on a float32 array.

    gradient(dy, x, y) is dy * act'(x) from the input x and the output y (float32 arrays of
    one shape); `gradient_reads_input` says whether it needs x (False: x may be None, so a
    layer can keep only its output). Custom functions have no gradient: `differentiable`
    is False and gradient raises NotImplementedError."""

    def __init__(self, name, fn, fused=None, alpha=0.0):
        self.name, self._fn, self.fused, self.alpha = name, fn, fused, alpha

    def __call__(self, x):
        y = self._fn(x)
        if BUILTIN.get(self.name) is self:
            return np.asarray(y, dtype=np.float32)
        # A user's function: what it returns is checked (activations keep the shape).
        what = f"activation: {self.name!r} returned"
        try:
            y = v.float32_array(y, what)
        except ValueError as exc:  # a string, a ragged list
            raise ValueError(f"{what} {type(y).__name__}, not an array ({exc})") from None
        if y.shape != np.shape(x):
            raise ValueError(f"{what} shape {y.shape} for an input of shape {np.shape(x)}; "
                             f"an activation keeps the shape")
        return y

    @property
    def differentiable(self):
        return BUILTIN.get(self.name) is self

    @property
    def gradient_reads_input(self):
        return self.name not in _FROM_OUTPUT

    def gradient(self, dy, x, y):
        rule = _GRADIENTS.get(self.name) if self.differentiable else None
        if rule is None:
            raise NotImplementedError(f"activation {self.name!r}: a custom function has no "
                                      f"gradient; training needs a built-in activation")
        return np.asarray(rule(self, dy, x, y), dtype=np.float32)

    def __reduce__(self):
        """Built-ins pickle by name; others with their function (by reference)."""
        if BUILTIN.get(self.name) is self:
            return get, (self.name,)
        return Activation, (self.name, self._fn, self.fused, self.alpha)

    def __repr__(self):
        return f"Activation({self.name!r})"


def _erf(x):
    """erf in float64, to 1.2e-7 everywhere (the Chebyshev form of erfc in Numerical
    Recipes): far below float32 resolution, and vectorised."""
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = (-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277)))))))))
    erfc = t * np.exp(poly)
    return np.where(x >= 0, 1.0 - erfc, erfc - 1.0)


def _softmax(x):
    return ops.softmax(x, axis=-1)


def _log_softmax(x):
    return ops.log_softmax(x, axis=-1)


def _selu(x):
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    x64 = np.asarray(x, np.float64)
    return scale * np.where(x64 > 0, x64, alpha * np.expm1(np.minimum(x64, 0)))


def _gelu(x):
    x64 = np.asarray(x, np.float64)
    return 0.5 * x64 * (1.0 + _erf(x64 / math.sqrt(2.0)))


_GELU_TANH_C = math.sqrt(2.0 / math.pi)


def _gelu_tanh(x):
    """GELU's tanh approximation (PyTorch's gelu(approximate='tanh'), Keras'
    gelu(approximate=True), ONNX Gelu approximate='tanh'): a fastdl name."""
    x64 = np.asarray(x, np.float64)
    return 0.5 * x64 * (1.0 + np.tanh(_GELU_TANH_C * (x64 + 0.044715 * x64 ** 3)))


def _softplus(x):
    x64 = np.asarray(x, np.float64)
    return np.logaddexp(0.0, x64)


def _hard_sigmoid(x):
    return np.clip(np.asarray(x, np.float64) / 6.0 + 0.5, 0.0, 1.0)


def _builtin():
    """The built-in activations by Keras name (aliases included)."""
    table = {
        "linear": Activation("linear", lambda x: x),
        "relu": Activation("relu", ops.relu, "relu"),
        "relu6": Activation("relu6", ops.relu6, "relu6"),
        "sigmoid": Activation("sigmoid", ops.sigmoid, "sigmoid"),
        "tanh": Activation("tanh", ops.tanh, "tanh"),
        "silu": Activation("silu", ops.silu, "silu"),
        "hard_swish": Activation("hard_swish", ops.hard_swish, "hard_swish"),
        # Keras' defaults: elu alpha 1, leaky_relu negative_slope 0.2.
        "elu": Activation("elu", ops.elu, "elu", 1.0),
        "leaky_relu": Activation("leaky_relu", lambda x: ops.leaky_relu(x, 0.2),
                                 "leaky_relu", 0.2),
        "softmax": Activation("softmax", _softmax),
        "log_softmax": Activation("log_softmax", _log_softmax),
        "selu": Activation("selu", _selu),
        "gelu": Activation("gelu", _gelu),
        "gelu_tanh": Activation("gelu_tanh", _gelu_tanh),
        "softplus": Activation("softplus", _softplus),
        "hard_sigmoid": Activation("hard_sigmoid", _hard_sigmoid),
        "exponential": Activation("exponential", lambda x: np.exp(np.asarray(x, np.float64))),
    }
    table["swish"] = Activation("swish", ops.silu, "silu")
    table["hard_silu"] = Activation("hard_silu", ops.hard_swish, "hard_swish")
    return table


def _gradient_rules():
    """name -> rule(activation, dy, x, y) for every built-in activation."""
    def from_output(op):
        return lambda a, dy, x, y: op(dy, y)

    def from_input(op):
        return lambda a, dy, x, y: op(dy, x)

    def float64(derivative):  # the Keras-only activations, computed as their forwards are
        return lambda a, dy, x, y: np.asarray(dy, np.float64) * derivative(
            np.asarray(x, np.float64))

    def d_selu(x):
        alpha, scale = 1.6732632423543772, 1.0507009873554805
        return scale * np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0)))

    def d_gelu(x):
        return 0.5 * (1.0 + _erf(x / math.sqrt(2.0))) + x * np.exp(-0.5 * x * x) / math.sqrt(
            2.0 * math.pi)

    def d_gelu_tanh(x):
        t = np.tanh(_GELU_TANH_C * (x + 0.044715 * x ** 3))
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _GELU_TANH_C * (
            1.0 + 3 * 0.044715 * x * x)

    def d_softplus(x):
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))

    def d_hard_sigmoid(x):
        return np.where((x > -3.0) & (x < 3.0), 1.0 / 6.0, 0.0)

    return {
        "linear": lambda a, dy, x, y: dy,
        "relu": from_output(ops.relu_backward),
        "relu6": from_output(ops.relu6_backward),
        "sigmoid": from_output(ops.sigmoid_backward),
        "tanh": from_output(ops.tanh_backward),
        "silu": from_input(ops.silu_backward), "swish": from_input(ops.silu_backward),
        "hard_swish": from_input(ops.hard_swish_backward),
        "hard_silu": from_input(ops.hard_swish_backward),
        "elu": lambda a, dy, x, y: ops.elu_backward(dy, x, a.alpha),
        "leaky_relu": lambda a, dy, x, y: ops.leaky_relu_backward(dy, x, a.alpha),
        "softmax": lambda a, dy, x, y: ops.softmax_backward(dy, y, axis=-1),
        "log_softmax": lambda a, dy, x, y: ops.log_softmax_backward(dy, y, axis=-1),
        "selu": float64(d_selu), "gelu": float64(d_gelu),
        "gelu_tanh": float64(d_gelu_tanh), "softplus": float64(d_softplus),
        "hard_sigmoid": float64(d_hard_sigmoid),
        "exponential": lambda a, dy, x, y: np.asarray(dy, np.float64) * y,
    }


_GRADIENTS = _gradient_rules()
# Activations whose gradient is a function of their output alone.
_FROM_OUTPUT = {"linear", "relu", "relu6", "sigmoid", "tanh", "softmax", "log_softmax",
                "exponential"}
BUILTIN = _builtin()
_CUSTOM = {}  # name -> callable, as keras.utils.get_custom_objects()


def custom_objects():
    """The registry of user functions by name (the dict itself: adding to it registers)."""
    return _CUSTOM


def register(name, fn):
    """Makes `fn` (array -> array) usable as activation=`name` everywhere (layers, configs,
    saved models)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"name: expected a non-empty str, got {name!r}")
    if not callable(fn):
        raise TypeError(f"fn: expected a callable, got {type(fn).__name__}")
    _check_takes_an_array(fn, "fn")
    _CUSTOM[name] = fn
    return fn


def _check_takes_an_array(fn, name):
    """TypeError naming `name` unless fn(x) is a call fn's signature takes."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # no signature to read (some builtins): call it
        return
    try:
        signature.bind(None)
    except TypeError as exc:
        raise TypeError(f"{name}: an activation is called as fn(x), which the signature "
                        f"{signature} of {getattr(fn, '__name__', fn)!r} does not take: "
                        f"{exc}") from None


def get(identifier, name="activation"):
    """An Activation from None ('linear'), a Keras name, a registered name, an Activation or
    a callable; ValueError naming `name` for an unknown name."""
    if identifier is None:
        return BUILTIN["linear"]
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in BUILTIN:
            return BUILTIN[key]
        if identifier in _CUSTOM:
            return Activation(identifier, _CUSTOM[identifier])
        raise ValueError(f"{name}: unknown activation {identifier!r}; expected one of "
                         f"{', '.join(sorted(BUILTIN))} or a name registered with "
                         f"fastdl.activations.register")
    if callable(identifier):
        _check_takes_an_array(identifier, name)
        label = getattr(identifier, "__name__", type(identifier).__name__)
        for key, fn in _CUSTOM.items():
            if fn is identifier:
                label = key
        return Activation(label, identifier)
    raise TypeError(f"{name}: expected a name, a callable or None, got "
                    f"{type(identifier).__name__}")
