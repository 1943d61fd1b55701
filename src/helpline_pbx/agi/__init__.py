"""FastAGI: what the dialplan asks the service before a call reaches Stasis."""

from helpline_pbx.agi.server import AgiHandler, AgiRequest, AgiServer

__all__ = ["AgiHandler", "AgiRequest", "AgiServer"]
