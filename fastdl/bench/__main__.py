"""Entry point of ``python -m fastdl.bench`` (see :mod:`fastdl.bench.cli`)."""

from .cli import main

raise SystemExit(main())
