"""The service's settings: environment variables prefixed HELPLINE_, validated once at start-up."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from helpline_pbx.addresses import is_loopback
from helpline_pbx.ari.pool import DEFAULT_SESSION_LIMIT
from helpline_pbx.core.policy import DEFAULT_SHIFT_LIMITS, Policy, ShiftLimit
from helpline_pbx.core.routing import ALL_ROLES
from helpline_pbx.core.supervision import SupervisionPolicy

_SHIFT_ENTRY = re.compile(r"(?P<role>[a-z]+)=(?P<hours>\d+(?:\.\d+)?)h(?:/(?P<calls>\d+))?")


def _modes(text: str) -> frozenset[str]:
    return frozenset(mode.strip() for mode in text.split(",") if mode.strip())


def parse_shift_limits(text: str) -> dict[str, ShiftLimit]:
    """ "volunteer=4h/12,supervisor=8h" -> limits per role; "none" or "" -> no limit."""
    limits: dict[str, ShiftLimit] = {}
    if text.strip().lower() in ("", "none"):
        return limits
    for entry in text.split(","):
        match = _SHIFT_ENTRY.fullmatch(entry.strip())
        if match is None or match["role"] not in ALL_ROLES:
            raise ValueError(
                f"shift limit {entry.strip()!r} is not ROLE=HOURSh or ROLE=HOURSh/CALLS with ROLE one of "
                + ", ".join(sorted(ALL_ROLES))
            )
        calls = int(match["calls"]) if match["calls"] else None
        limits[match["role"]] = ShiftLimit(max_on_duty=float(match["hours"]) * 3600, max_calls=calls)
    return limits


def shift_limits_text(limits: Mapping[str, ShiftLimit]) -> str:
    """The inverse of parse_shift_limits, for limits that have hours: how a default is written."""
    entries = []
    for role, limit in limits.items():
        if limit.max_on_duty is None:
            raise ValueError(f"the {role} shift limit has no hours: it cannot be written as ROLE=HOURSh")
        calls = "" if limit.max_calls is None else f"/{limit.max_calls}"
        entries.append(f"{role}={limit.max_on_duty / 3600:g}h{calls}")
    return ",".join(entries) or "none"


# The core's own defaults are the settings' defaults: one home for each.
_POLICY = Policy()

# Secrets that ship in samples and tutorials: a line must never run with one of them.
_DEFAULT_SECRETS = frozenset(
    {"", "asterisk", "password", "secret", "changeme", "change-me", "admin", "helpline", "1234"}
)
MIN_SECRET_LENGTH = 16


DEFAULT_STATE_DIR = Path("/var/lib/helpline-pbx")


def state_dir_from_env() -> Path:
    """HELPLINE_STATE_DIR, the folder the scripts keep the line's state and secrets in."""
    return Path(os.environ.get("HELPLINE_STATE_DIR") or DEFAULT_STATE_DIR)


def state_defaults(state_dir: Path) -> dict[str, Any]:
    """Where each state file lives by default, as scripts/asterisk.sh and the Makefile lay them out."""
    return {
        "ari_password_file": state_dir / "secrets" / "ari-password",
        "ami_password_file": state_dir / "secrets" / "ami-password",
        "auth_failure_log": state_dir / "log" / "sip-auth-failures.log",
        "keys_dir": state_dir / "keys",
        "database_url": f"sqlite+aiosqlite:///{state_dir}/roster.db",
        "console_dir": state_dir / "console",
    }


def console_dir_from_env() -> Path:
    """The console's folder for commands that need only it (`board`)."""
    folder = os.environ.get("HELPLINE_CONSOLE_DIR")
    return Path(folder) if folder else state_dir_from_env() / "console"


def database_url_from_env() -> str:
    """The roster URL for commands that need only the database (not the ARI password)."""
    return os.environ.get("HELPLINE_DATABASE_URL") or str(
        state_defaults(state_dir_from_env())["database_url"]
    )


def keys_dir_from_env() -> Path:
    return Path(os.environ.get("HELPLINE_KEYS_DIR") or state_defaults(state_dir_from_env())["keys_dir"])


class SettingsError(ValueError):
    """The configuration cannot be used; the message says which setting and why."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HELPLINE_", extra="ignore", frozen=True)

    ari_url: str = "http://127.0.0.1:8088/ari"
    ari_user: str = "helpline"
    # The line's state (roster, keys, secrets); the three settings below default to files in it.
    state_dir: Path = DEFAULT_STATE_DIR
    ari_password: SecretStr | None = None
    ari_password_file: Path | None = DEFAULT_STATE_DIR / "secrets" / "ari-password"
    ari_app: str = Field(default="helpline", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # Asterisk's HTTP `sessionlimit` (scripts/asterisk.sh writes this same setting into http.conf): the
    # service keeps its ARI requests in flight under it (ari/pool.py derives the bound). Unset, Asterisk's
    # own default.
    ari_session_limit: int = Field(default=DEFAULT_SESSION_LIMIT, ge=8, le=10_000)

    # The numbers this instance answers, comma-separated. Empty: the default route (ari_app) takes every
    # number no instance claimed. Two instances on one Asterisk each claim their own.
    dids: str = Field(default="", pattern=r"^[0-9, ]*$")

    database_url: str = f"sqlite+aiosqlite:///{DEFAULT_STATE_DIR}/roster.db"

    ring_timeout: float = Field(default=_POLICY.ring_timeout, gt=0, le=300)
    rest_after_call: float = Field(default=_POLICY.rest_after_call, ge=0, le=3600)
    missed_offer_delay: float = Field(default=_POLICY.missed_offer_delay, ge=0, le=3600)
    declined_offer_delay: float = Field(default=_POLICY.declined_offer_delay, ge=0, le=3600)
    # Listeners' protection: a pause after this many offers missed in a row (0: never), what one "more
    # rest" adds, the rest after a difficult call (awaiting a debrief), how long after a call it may still be
    # marked difficult, the break after a shift limit.
    max_missed_offers: int = Field(default=_POLICY.max_missed_offers, ge=0, le=20)
    rest_extension: float = Field(default=_POLICY.rest_extension, ge=0, le=3600)
    rest_after_difficult: float = Field(default=_POLICY.rest_after_difficult, ge=0, le=7200)
    difficult_window: float = Field(default=_POLICY.difficult_window, ge=0, le=7200)
    shift_break: float = Field(default=_POLICY.shift_break, ge=0, le=7200)
    # Per role: hours on duty, then optionally a number of calls, before a break: "volunteer=4h/12,...";
    # "none" for no limit at all.
    shift_limits: str = shift_limits_text(DEFAULT_SHIFT_LIMITS)
    roster_poll_interval: float = Field(default=2.0, gt=0, le=60)
    drain_timeout: float = Field(default=3600.0, ge=0)
    # If the service dies, waiting callers go to the fallback after this long (Asterisk's own timer).
    service_grace: float = Field(default=60.0, ge=4, le=3600)
    fallback_context: str = "helpline-fallback"
    line_name: str = Field(default="Écoute", min_length=1, max_length=20)

    log_level: str = Field(default="info", pattern=r"^(debug|info|warning|error)$")

    # Failed SIP logins, read from Asterisk's manager (AMI, loopback, security events only) and written to
    # auth_failure_log for ops and fail2ban. Without the AMI password file the log is off.
    ami_host: str = "127.0.0.1"
    ami_port: int = Field(default=5038, ge=1, le=65535)
    ami_user: str = "helpline"
    ami_password_file: Path = DEFAULT_STATE_DIR / "secrets" / "ami-password"
    auth_failure_log: Path = DEFAULT_STATE_DIR / "log" / "sip-auth-failures.log"

    # Screening (FastAGI, asked by the dialplan before the number is wiped).
    agi_host: str = "127.0.0.1"
    agi_port: int = Field(default=4573, ge=0, le=65535)
    keys_dir: Path = DEFAULT_STATE_DIR / "keys"
    key_period_days: int = Field(default=30, ge=1, le=366)
    key_overlap_days: int = Field(default=2, ge=0, le=30)
    rate_limit_calls: int = Field(default=12, ge=1)
    rate_limit_window_minutes: int = Field(default=60, ge=1)
    default_country_code: str = Field(default="33", pattern=r"^[1-9][0-9]{0,2}$")
    # Show the listener how often this (pseudonymous) caller called within the key period.
    repeat_hint: bool = False

    retention_days: int = Field(default=90, ge=1, le=3650)
    # How long a bar made by a supervisor from their phone (*86 + call code) lasts.
    bar_days: float = Field(default=30.0, gt=0, le=366)
    # A listener hears a beep when a supervisor starts listening or coaching; everyone in the call hears it
    # when a supervisor joins.
    supervision_tone: bool = False
    # Who may be supervised (trainees, listeners who agreed) and how: the association's policy.
    supervise_trainees: bool = True
    supervise_consenting: bool = True
    supervision_modes: str = Field(default="listen,coach,join", pattern=r"^\s*[a-z]+(\s*,\s*[a-z]+)*\s*$")

    # The web console (and /metrics), served by the service itself. Loopback by default; bound elsewhere it
    # speaks HTTPS (the operator's certificate, else one generated on first start), and plain HTTP off
    # loopback is refused unless console_allow_plain_http says the operator's proxy terminates TLS.
    console: bool = True
    console_host: str = "127.0.0.1"
    console_port: int = Field(default=8089, ge=0, le=65535)
    console_tls: str = Field(default="auto", pattern=r"^(auto|on|off)$")
    # The console's own files: its address once started (url), the box's board token, the generated
    # certificate. The operator's certificate and key, when given, are used instead of a generated one.
    console_dir: Path = DEFAULT_STATE_DIR / "console"
    console_cert_file: Path | None = None
    console_key_file: Path | None = None
    console_allow_plain_http: bool = False
    # The board's and statistics' defaults for lines that set none: answered within N s counts towards the
    # service level (and a longer wait raises an alert); hung up within N s is a short abandon.
    service_level: int = Field(default=30, ge=1, le=3600)
    short_abandon: int = Field(default=5, ge=0, le=600)

    @model_validator(mode="before")
    @classmethod
    def _defaults_from_state_dir(cls, data: Any) -> Any:
        # Files not set explicitly live in the state folder, wherever HELPLINE_STATE_DIR puts it.
        if isinstance(data, dict) and data.get("state_dir"):
            for name, value in state_defaults(Path(data["state_dir"])).items():
                data.setdefault(name, value)
        return data

    @model_validator(mode="after")
    def _console_is_safe(self) -> Self:
        plain_off_loopback = not self.console_https() and not is_loopback(self.console_host)
        if self.console and plain_off_loopback and not self.console_allow_plain_http:
            raise ValueError(
                f"the console would serve plain HTTP on {self.console_host}: use console_tls=on or auto, "
                "or set console_allow_plain_http=true only behind a proxy that terminates TLS"
            )
        return self

    def console_certificate(self) -> tuple[Path, Path]:
        return (
            self.console_cert_file or self.console_dir / "cert.pem",
            self.console_key_file or self.console_dir / "key.pem",
        )

    def console_https(self) -> bool:
        if self.console_tls == "on":
            return True
        return self.console_tls == "auto" and not is_loopback(self.console_host)

    @model_validator(mode="after")
    def _password_is_usable(self) -> Self:
        # Fail fast: read the secret now so a missing file or a sample password stops start-up.
        self.ari_secret()
        return self

    @field_validator("shift_limits")
    @classmethod
    def _shift_limits_parse(cls, value: str) -> str:
        parse_shift_limits(value)
        return value

    @field_validator("supervision_modes")
    @classmethod
    def _supervision_modes_known(cls, value: str) -> str:
        SupervisionPolicy(modes=_modes(value))
        return value

    def supervision_policy(self) -> SupervisionPolicy:
        return SupervisionPolicy(
            trainees=self.supervise_trainees,
            consenting=self.supervise_consenting,
            modes=_modes(self.supervision_modes),
        )

    def shift_limit_map(self) -> dict[str, ShiftLimit]:
        return parse_shift_limits(self.shift_limits)

    def did_list(self) -> tuple[str, ...]:
        return tuple(d.strip() for d in self.dids.split(",") if d.strip())

    def agi_url(self) -> str:
        return f"agi://{self.agi_host}:{self.agi_port}/screen"

    def ami_secret(self) -> SecretStr | None:
        """The AMI password, or None when its file is missing (an Asterisk set up before AMI was used)."""
        try:
            value = self.ami_password_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SettingsError(
                f"HELPLINE_AMI_PASSWORD_FILE ({self.ami_password_file}): {exc.strerror}"
            ) from None
        if value.lower() in _DEFAULT_SECRETS or len(value) < MIN_SECRET_LENGTH:
            raise SettingsError(
                f"HELPLINE_AMI_PASSWORD_FILE ({self.ami_password_file}) is empty, a well-known default or "
                f"shorter than {MIN_SECRET_LENGTH} characters; use a generated secret"
            )
        return SecretStr(value)

    def ari_secret(self) -> SecretStr:
        if self.ari_password is not None:
            value = self.ari_password.get_secret_value()
            origin = "HELPLINE_ARI_PASSWORD"
        elif self.ari_password_file is not None:
            origin = f"HELPLINE_ARI_PASSWORD_FILE ({self.ari_password_file})"
            try:
                value = self.ari_password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SettingsError(
                    f"{origin} cannot be read ({exc.strerror}); `make asterisk-start` generates it"
                ) from None
        else:
            raise SettingsError("no ARI password: set HELPLINE_ARI_PASSWORD_FILE")
        if value.lower() in _DEFAULT_SECRETS or len(value) < MIN_SECRET_LENGTH:
            raise SettingsError(
                f"{origin} is empty, a well-known default or shorter than {MIN_SECRET_LENGTH} "
                "characters; use a generated secret"
            )
        return SecretStr(value)


def default_of(name: str) -> Any:
    """A setting's default, for code that has its own copy of the value (a CLI option, a config)."""
    return Settings.model_fields[name].default


def load_settings(**overrides: object) -> Settings:
    """Read the settings once; a bad value becomes a SettingsError naming the setting."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"HELPLINE_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(problems) from None
