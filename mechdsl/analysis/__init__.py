"""Analyses over the mechanism: the dominance (implication) graph."""
from .dominance import DominanceGraph, Rule

__all__ = ["DominanceGraph", "Rule"]
