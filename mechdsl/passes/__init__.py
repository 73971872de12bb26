"""Reduction passes and their registry (the one place a pass is registered).

A new pass is one module with a :class:`~.base.Pass` subclass and one line in
:data:`PASSES`; see docs/extending.md.  Passes run in this order; each runs
only if it accepts, and every reason (applied or not) is reported.
"""
from .base import Acceptance, Pass, Reduction, Stage
from .facts import (Accepted, AdjacentIC, Applied, DerivedFamily, Elimination, ExtremeIR, Facts, Implied,
                    MonotoneFamily)
from .structure import ICStructure
from .drop_implied import DropImplied
from .eliminate_payments import EliminatePayments
from .local_ic import LocalIC

#: name -> pass class, in the order they run.
PASSES = {
    "local_ic": LocalIC,
    "drop_implied": DropImplied,
    "eliminate_payments": EliminatePayments,
}

__all__ = ["PASSES", "Pass", "Reduction", "Stage", "Acceptance", "Applied", "Facts", "ICStructure", "AdjacentIC",
           "MonotoneFamily", "ExtremeIR", "Elimination", "Implied", "DerivedFamily", "Accepted"]
