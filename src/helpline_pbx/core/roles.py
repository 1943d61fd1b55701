"""The roles a listener may have: one vocabulary for the rules (routing, shifts, supervision), the roster
that stores them and the commands that set them."""

from enum import StrEnum


class Role(StrEnum):
    VOLUNTEER = "volunteer"
    PROFESSIONAL = "professional"
    SUPERVISOR = "supervisor"
