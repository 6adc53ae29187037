"""fastdl.optimizers: SGD, RMSprop, Adam, AdamW, Adagrad (Keras 3's names, arguments,
defaults and update formulas), learning-rate schedules (fastdl.optimizers.schedules) and
gradient clipping; the update loops are compiled (fastdl._optimizers, Cython).

    opt = fastdl.optimizers.Adam(learning_rate=1e-3, clipnorm=1.0)
    opt.apply_gradients(zip(grads, layer.trainable_weights))
"""
from fastdl.optimizers import schedules
from fastdl.optimizers.base import Optimizer
from fastdl.optimizers.rules import SGD, Adagrad, Adam, AdamW, RMSprop

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "get", "schedules",
           "serialize", "deserialize"]

_BY_NAME = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW, "adagrad": Adagrad}


def get(identifier):
    """An optimizer from a Keras name ('adam', 'sgd', ...: default arguments), a config
    dict ({'class_name': ..., 'config': ...}) or an Optimizer (returned as is)."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            raise ValueError(f"optimizer: expected one of {sorted(_BY_NAME)} or an Optimizer, "
                             f"got {identifier!r}")
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise TypeError(f"optimizer: expected a name, a config dict or an Optimizer, got "
                    f"{type(identifier).__name__}")


def serialize(optimizer):
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config):
    name = config.get("class_name") if isinstance(config, dict) else None
    cls = _BY_NAME.get(str(name).lower())
    if cls is None:
        raise ValueError(f"optimizer: unknown class {name!r}")
    return cls.from_config(config.get("config", {}))
