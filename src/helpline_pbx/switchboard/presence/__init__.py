"""Presence at the edge: the listeners' feature codes and the roster kept in step with the core."""
