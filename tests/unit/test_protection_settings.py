"""Settings of the listeners' protection: shift limits per role, and the supervision policy."""

from __future__ import annotations

import pytest

from helpline_pbx.core.policy import ShiftLimit
from helpline_pbx.settings import Settings, parse_shift_limits


def test_hours_and_calls_per_role() -> None:
    assert parse_shift_limits("volunteer=4h/12, supervisor=7.5h") == {
        "volunteer": ShiftLimit(max_on_duty=4 * 3600, max_calls=12),
        "supervisor": ShiftLimit(max_on_duty=7.5 * 3600),
    }
    assert parse_shift_limits("none") == {}


@pytest.mark.parametrize("text", ["volunteer=4", "trainee=4h", "volunteer=4h/0", "volunteer=0h", "4h"])
def test_a_malformed_limit_is_refused_with_its_text(text: str) -> None:
    with pytest.raises(ValueError, match=r"shift limit|max_"):
        parse_shift_limits(text)


def test_the_setting_is_checked_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELPLINE_SHIFT_LIMITS", "volunteer=forever")
    monkeypatch.setenv("HELPLINE_ARI_PASSWORD", "a-long-enough-test-secret-0123456789")
    with pytest.raises(ValueError, match="volunteer=forever"):
        Settings()


def test_the_supervision_policy_comes_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELPLINE_ARI_PASSWORD", "a-long-enough-test-secret-0123456789")
    monkeypatch.setenv("HELPLINE_SUPERVISE_CONSENTING", "false")
    monkeypatch.setenv("HELPLINE_SUPERVISION_MODES", "listen, coach")
    policy = Settings().supervision_policy()
    assert (policy.trainees, policy.consenting, policy.modes) == (True, False, {"listen", "coach"})
    monkeypatch.setenv("HELPLINE_SUPERVISION_MODES", "listen,spy")
    with pytest.raises(ValueError, match="spy"):
        Settings()
