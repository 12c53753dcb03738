"""Specs and the trick contract: parse a spec, validate parameters, register tricks; the types hooks
exchange (``types``). Nothing here imports a layer above it: runs are built in ``training``."""
