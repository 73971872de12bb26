"""mechdsl: an algebraic modelling language for mechanism and contract design.

Pipeline (one module per stage)::

    text --parse--> AST --check--> SymbolTable --lower--> IR (SymPy)
         --bind data--> Instance --compile--> Pyomo model --solve--> Result
         --verify against the original constraints--> Verification

Start with :func:`load`.
"""
from .errors import (DataError, MechError, MechSemanticError, MechSyntaxError, SolveError,
                     VerificationError)

__version__ = "0.1.0"

_API = ("Model", "SolveOptions", "load", "loads")


def __getattr__(name):  # PEP 562: the API (and SymPy, Lark, numpy behind it) is imported on first use
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'mechdsl' has no attribute '{name}'")
__all__ = ["load", "loads", "Model", "SolveOptions", "MechError", "MechSyntaxError", "MechSemanticError",
           "DataError", "SolveError", "VerificationError"]
