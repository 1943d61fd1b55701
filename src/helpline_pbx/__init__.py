"""helpline-pbx: the telephony backend of a confidential, anonymous listening line on Asterisk."""

__version__ = "0.1.0"
