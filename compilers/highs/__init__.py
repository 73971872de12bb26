"""HiGHS read directly from the compiled form (highspy ``passModel``), with scaling and certificates."""
