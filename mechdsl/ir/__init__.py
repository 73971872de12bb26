"""The mechanism IR.

* :mod:`.nodes`: typed declarations (``Problem``, ``VarDef``, ``ConstraintDef``, bodies) as frozen dataclasses;
* :mod:`.sym`: SymPy node classes for sets, sums, expectations and auxiliary results;
* :mod:`.lower`: AST -> IR;
* :mod:`.ids`: readable constraint-instance ids (``IC[3->1]``) and their parsers;
* :mod:`.printer`: ``print_problem``, a stable text form of a ``Problem`` (golden tests, debugging).
"""
