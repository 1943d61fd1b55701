"""Calls at the edge: legs and their ids, ARI events turned into core events, commands performed."""
