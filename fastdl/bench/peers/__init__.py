"""The libraries fastdl is compared with, each behind :class:`~.base.Library`.

Adapters import their library lazily, in ``prepare``/``version``, so listing or
running the suite works whatever subset of peers is installed.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

from .base import Library, Runner, Unsupported
from .keras_tf_peer import KerasTensorFlowPeer
from .ncnn_peer import NcnnPeer
from .numpy_peer import NumpyPeer
from .onnxruntime_peer import OnnxRuntimePeer
from .openvino_peer import OpenVinoPeer
from .torch_peer import TorchPeer

__all__ = ["ALL_PEERS", "Library", "Runner", "Unsupported", "select_peers"]

ALL_PEERS: Tuple[Library, ...] = (TorchPeer(), OnnxRuntimePeer(), OpenVinoPeer(), NcnnPeer(),
                                  NumpyPeer(), KerasTensorFlowPeer())


def select_peers(spec: str, peers: Sequence[Library] = ALL_PEERS) -> List[Library]:
    """The peers named in ``spec`` (comma-separated names or labels; 'all' or 'none')."""
    items = [item.strip().lower() for item in spec.split(",") if item.strip()]
    if not items:
        raise ValueError(f"no peer given in {spec!r} (expected peer names, 'all' or 'none')")
    if items == ["all"]:
        return list(peers)
    if items == ["none"]:
        return []
    known = {key: peer for peer in peers for key in (peer.name, peer.label)}
    unknown = [item for item in items if item not in known]
    if unknown:
        raise ValueError(f"unknown peer(s) {', '.join(unknown)}; "
                         f"the peers are: {', '.join(p.name for p in peers)}")
    wanted = {known[item].name for item in items}
    return [peer for peer in peers if peer.name in wanted]
