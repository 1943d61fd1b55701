"""Supervision at the edge: listen, coach and join sessions on snoop channels."""
