"""Listening lines: their tables, repository, cache, arrival rules and command group."""
