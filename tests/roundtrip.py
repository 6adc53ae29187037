"""A model saved and loaded (fastdl's file) and pickled predicts exactly as before: the
check the layer tests share."""
import pickle

import numpy as np

from fastdl import models


def assert_saves_loads_and_pickles(model, x, tmp_path):
    """model.predict(x) before == after save/load_model == after a pickle round trip;
    returns the predictions."""
    want = model.predict(x, verbose=0)
    path = tmp_path / "m.fastdl"
    model.save(path)
    np.testing.assert_array_equal(models.load_model(path).predict(x, verbose=0), want)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(x, verbose=0),
                                  want)
    return want
