"""fastdl's kernel benchmark suite: ``python -m fastdl.bench`` and ``benches/``.

Layout:

* :mod:`.cases`   -- the suite: each case's shapes, FLOP count and inputs
* :mod:`.peers`   -- adapters for PyTorch, ONNX Runtime, ncnn and NumPy
* :mod:`.subject` -- fastdl itself behind the same adapter interface, its FMA peak
* :mod:`.timing`  -- interleaved warm/cold timing, median of samples
* :mod:`.suite`   -- prepare, check outputs against fastdl's, time, collect results
* :mod:`.report`  -- text tables and the --json document
* :mod:`.cli`     -- the command line (``__main__`` runs it)
"""
