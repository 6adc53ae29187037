"""A layer's input gradient through its training pass, and PyTorch's autograd of the same
function: what the layer tests compare."""
import numpy as np


def layer_gradient(layer, x, dy):
    """The layer's gradient for its input x from dy, through its training forward."""
    _, cache = layer._train_forward(x, True)
    return layer._backward(dy, cache, {})


def torch_value_and_gradient(torch, fn, x, rng, double=False):
    """(y, dy, dx): fn(x) by PyTorch (float64 with double), a random upstream gradient dy
    of y's shape drawn from rng (float32), and autograd's gradient of x from it."""
    xt = torch.from_numpy(x.astype(np.float64) if double else x).requires_grad_()
    yt = fn(xt)
    dy = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
    yt.backward(torch.from_numpy(dy).to(yt.dtype))
    return yt.detach().numpy(), dy, xt.grad.numpy()
