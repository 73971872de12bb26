"""Parsing: text -> Lark tree -> typed AST (:mod:`.ast`)."""
from .parser import parse, parse_file

__all__ = ["parse", "parse_file"]
