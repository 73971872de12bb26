"""The .mech grammars, shipped as package data (``mechdsl.grammar``).

``mech.lark`` is the core language.  Mechanism kinds add fragments under
``mechanisms/``; :func:`mechdsl.syntax.parser.grammar_text` concatenates them.
"""
