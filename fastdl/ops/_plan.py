"""What every plan that holds weights shares: it owns a float32 copy of them (a caller who
changes its array afterwards changes nothing), shows them read-only as `weight` / `bias`,
and takes new ones of the same shapes with set_weights (repacked in place by the backend's
plan, `self._impl`)."""
import numpy as np

from fastdl import _validate as v
from fastdl._conv_geometry import AXES


class WeightedPlan:
    _w = None     # the plan's own weights (float32, C-contiguous)
    _b = None     # its own bias, or None
    _impl = None  # the backend's plan (fastdl._contract.PLANS)

    @property
    def weight(self):
        """The weights this plan computes with (a read-only view)."""
        return v.read_only(self._w)

    @property
    def bias(self):
        """The bias this plan computes with (a read-only view), or None."""
        return v.read_only(self._b)

    @staticmethod
    def _own_bias(b, size):
        if b is None:
            return None
        arr = v.owned_float32(b, "b", 1, f"1-D array ({size},)")
        if arr.shape != (size,):
            raise ValueError(f"b: expected shape ({size},), got {arr.shape}")
        return arr

    def set_weights(self, w, b=None):
        """New weights (and bias) of the shapes the plan was built with, e.g. after a
        training step: copied into the plan's own arrays and repacked in place (no new
        packed buffers). b is required exactly when the plan has a bias."""
        w = v.same_shape(w, "w", self._w.shape, "the shape the plan was built with")
        if (b is None) != (self._b is None):
            want = ("None: the plan was built without a bias" if self._b is None else
                    f"a bias of shape {self._b.shape}: the plan was built with one")
            raise ValueError(f"b: expected {want}, got {'None' if b is None else 'an array'}")
        if b is not None:
            b = v.same_shape(b, "b", self._b.shape, "the shape the plan was built with")
            np.copyto(self._b, b)
        np.copyto(self._w, w)
        self._impl.set_weights(self._w, self._b)


def _adoptable(a, own):
    return (type(a) is np.ndarray and a.dtype == np.float32 and a.flags.c_contiguous
            and a.shape == own.shape)


def adopt_weights(plan, w, b=None):
    """set_weights for a layer's own plans, after a training step: the plan takes w and b
    themselves as its weights (float32, C-contiguous, its shapes; anything else is copied
    by set_weights) instead of copying them: a 1024 x 500 kernel is 2 MB less to move per
    step. The layer changes them only in its optimizer step and calls this again right
    after (Layer._weights_changed); no one else sees the plan."""
    if not (_adoptable(w, plan._w) and (b is None) == (plan._b is None)
            and (b is None or _adoptable(b, plan._b))):
        # Own arrays again first: set_weights must not write into ones adopted before.
        plan._w = plan._w.copy()
        plan._b = None if plan._b is None else plan._b.copy()
        return plan.set_weights(w, b)
    plan._w, plan._b = w, b
    plan._impl.set_weights(w, b)


def conv_weight(w, dims, layout, may_be_empty=None):
    """A (transposed) convolution's weights [a, b, *kernel] with `dims` spatial axes as the
    plan's own float32 copy (`layout` names a and b); ValueError where an axis other than
    `may_be_empty` (a's name: a forward convolution may have no output channel) is empty."""
    arr = v.owned_float32(w, "w", dims + 2, f"{dims + 2}-D array ({layout}, kernel {AXES[dims]})")
    first = 1 if may_be_empty else 0
    if 0 in arr.shape[first:]:
        what = layout.split(", ")[1] if may_be_empty else "channels"
        raise ValueError(f"w: expected non-zero {what} and kernel size, got shape {arr.shape}")
    return arr


def conv_groups(groups, channels, axis):
    """`groups` checked to divide w's `axis` (its extent: `channels`)."""
    groups = v.positive_int(groups, "groups")
    if channels % groups:
        raise ValueError(f"groups: expected a divisor of w's {axis} ({channels}), got {groups}")
    return groups
