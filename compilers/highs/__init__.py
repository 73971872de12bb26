"""HiGHS read directly from the compiled form (highspy ``passModel``), with scaling and certificates.

:func:`solve_highs` and :class:`HighsSession` live in :mod:`.backend`; they are re-exported here
lazily, so importing this package imports neither highspy nor the backend.
"""
__all__ = ["solve_highs", "HighsSession"]


def __getattr__(name):
    if name in __all__:
        from . import backend

        return getattr(backend, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
