"""The data model: frozen values (specs, events, commands, reports) and pure functions.

The bottom layer above `_errors` and `_validate`: it imports nothing else of dagtrio,
and nothing of trio. `convert` is the one cattrs converter for all of it; `jsonvalue`
says what may be stored as JSON; `frozen` makes inputs and outputs read-only; `graph`
orders batches of specs with igraph.
"""
