"""The switchboard: the service's I/O edge between Asterisk (ARI), the roster database and the core."""

from helpline_pbx.switchboard.runtime import Switchboard

__all__ = ["Switchboard"]
