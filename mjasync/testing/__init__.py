"""A stateful in-process Midjourney proxy simulator (FakeProxy) with fault injection, for tests."""

from __future__ import annotations

from ._faults import Fault, Faults
from ._jobs import FakeJob
from ._server import FakeProxy, serve
from ._stats import FakeStats, RecordedRequest

__all__ = ["FakeJob", "FakeProxy", "FakeStats", "Fault", "Faults", "RecordedRequest", "serve"]

for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
