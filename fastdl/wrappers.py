"""scikit-learn estimators around fastdl models (keras.wrappers' SKLearnClassifier and
SKLearnRegressor): cross_val_score, StratifiedKFold, GridSearchCV and pipelines take them.

    def build(X, y, hidden=12):
        model = fastdl.models.Sequential([fastdl.layers.Input((X.shape[1],)),
                                          fastdl.layers.Dense(hidden, activation="relu"),
                                          fastdl.layers.Dense(y.shape[1], activation="softmax")])
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        return model

    scores = cross_val_score(SKLearnClassifier(build, fit_kwargs={"epochs": 50}), X, y)

`model` is a compiled fastdl model (copied for every fit unless warm_start) or a callable
build(X=..., y=..., **model_kwargs) returning one. The classifier gives the model its
targets one-hot (n_samples, n_classes), as Keras' does -- except for a model whose output
has a single unit (a sigmoid binary classifier), which gets them as one 0/1 column and
whose predictions are thresholded at 0.5 (Keras' wrapper cannot train such a model).
scikit-learn is an optional dependency (pip install scikit-learn).
"""
import copy

import numpy as np

from fastdl import _validate as v

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
except ImportError:  # the wrappers then refuse to be built
    # Distinct stand-ins: one `object` three times over has no consistent MRO.
    class BaseEstimator:
        pass

    class ClassifierMixin:
        pass

    class RegressorMixin:
        pass
    _SKLEARN = False
else:
    _SKLEARN = True


class _Wrapper(BaseEstimator):
    def __init__(self, model, warm_start=False, model_kwargs=None, fit_kwargs=None):
        if not _SKLEARN:
            raise ImportError(f"{type(self).__name__} needs scikit-learn (pip install "
                              f"scikit-learn)")
        self.model = model
        self.warm_start = warm_start
        self.model_kwargs = model_kwargs
        self.fit_kwargs = fit_kwargs

    def _new_model(self, X, y):
        from fastdl.models import Model
        warm_start = v.flag(self.warm_start, "warm_start")  # checked at fit, as sklearn does
        if warm_start and hasattr(self, "model_"):
            return self.model_
        if isinstance(self.model, Model):
            model = self.model if warm_start else copy.deepcopy(self.model)
        elif callable(self.model):
            model = self.model(X=X, y=y, **(self.model_kwargs or {}))
        else:
            raise TypeError(f"model: expected a compiled fastdl model or a callable "
                            f"returning one, got {type(self.model).__name__}")
        if not isinstance(model, Model):
            raise TypeError(f"model: the build function returned {type(model).__name__}, "
                            f"not a fastdl model")
        if getattr(model, "_compiled", None) is None:
            raise ValueError("model: the model must be compiled (model.compile(...)) before "
                             "the wrapper fits it")
        return model

    def fit(self, X, y, **kwargs):
        """Fits a fresh model (build(X, y) or a copy of `model`) on X, y; kwargs go to
        model.fit over fit_kwargs."""
        X = _features(X)
        targets = self._encode(np.asarray(y), reset=True)
        model = self._new_model(X, targets)
        targets = self._shape_for(model, targets)
        fit_kwargs = {"verbose": 0, **(self.fit_kwargs or {}), **kwargs}
        self.history_ = model.fit(X, targets, **fit_kwargs).history
        self.model_ = model
        self.n_features_in_ = X.shape[1] if X.ndim == 2 else None
        return self

    def _fitted(self):
        if not hasattr(self, "model_"):
            from sklearn.exceptions import NotFittedError
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; "
                                 f"call fit first")
        return self.model_

    def _encode(self, y, reset):
        return y

    def _shape_for(self, model, targets):
        return targets


class SKLearnClassifier(ClassifierMixin, _Wrapper):
    """A classifier: fit(X, y) with labels of any kind (ints, strings), predict(X) ->
    labels, predict_proba(X) -> class probabilities (the model's outputs)."""

    def _encode(self, y, reset):
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(f"y: expected one label per sample, got shape {y.shape}")
        if reset:
            self.classes_ = np.unique(y)
            if len(self.classes_) < 2:
                raise ValueError("y: a classifier needs at least two classes, got "
                                 f"{len(self.classes_)}")
        index = np.searchsorted(self.classes_, y)
        return np.eye(len(self.classes_), dtype=np.float32)[index]

    def _shape_for(self, model, targets):
        units = model.output_shape[-1] if not isinstance(model.output_shape, list) else None
        self._binary_column = units == 1 and targets.shape[1] == 2
        return targets[:, 1:] if self._binary_column else targets

    def predict_proba(self, X):
        out = self._fitted().predict(_features(X), verbose=0)
        if self._binary_column:
            out = np.concatenate([1.0 - out, out], axis=1)
        return out

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def decision_function(self, X):
        """The model's raw outputs."""
        return self._fitted().predict(_features(X), verbose=0)


class SKLearnRegressor(RegressorMixin, _Wrapper):
    """A regressor: fit(X, y), predict(X) -> the model's outputs (one column squeezed)."""

    def _encode(self, y, reset):
        y = np.asarray(y, np.float32)
        if reset:
            self._y_ndim = y.ndim
        return y.reshape(-1, 1) if y.ndim == 1 else y

    def predict(self, X):
        out = self._fitted().predict(_features(X), verbose=0)
        return out[:, 0] if self._y_ndim == 1 and out.ndim == 2 and out.shape[1] == 1 else out


def _features(X):
    return v.float32_array(X, "X")
