"""Specs and the trick contract: parse a spec, validate parameters, register tricks, build a recipe."""
