"""The bench's whole models (fastdl/bench/model_zoo.py): each fastdl twin, holding its
PyTorch model's weights, gives PyTorch's outputs -- the models the bench times compute
the same thing (MobileNetV2's inverted residual blocks run as ConvChains)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fastdl.bench import model_zoo  # noqa: E402


@pytest.mark.parametrize("name", sorted(model_zoo.ZOO))
def test_fastdl_twin_matches_the_torch_model(name):
    module = model_zoo.torch_model(name)
    model = model_zoo.fastdl_model(name, module)
    x = np.random.default_rng(3).standard_normal((2,) + model_zoo.ZOO[name][2],
                                                 dtype=np.float32)
    with torch.inference_mode():
        want = module(torch.from_numpy(x)).numpy()
    for _ in range(2):  # the first call builds the plans, the second runs them
        got = model(model_zoo.channels_last(x))
        assert got.shape == want.shape == (2, model_zoo.CLASSES[name])
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
