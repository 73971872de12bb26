"""mechdsl: an algebraic modelling language for mechanism and contract design.

Pipeline (one module per stage)::

    text --parse--> AST --check--> SymbolTable --lower--> IR (SymPy)
         --bind data--> Instance --compile--> Pyomo model --solve--> Result
         --verify against the original constraints--> Verification

Start with :func:`load`.
"""
from .api import Model, SolveOptions, load, loads
from .errors import (DataError, MechError, MechSemanticError, MechSyntaxError, SolveError,
                     VerificationError)

__version__ = "0.1.0"
__all__ = ["load", "loads", "Model", "SolveOptions", "MechError", "MechSyntaxError", "MechSemanticError",
           "DataError", "SolveError", "VerificationError"]
