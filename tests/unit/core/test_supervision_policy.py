"""Who may supervise whom: only active supervisors, only trainees or consenting listeners, by default."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpline_pbx.core.supervision import (
    MODES,
    SupervisionPolicy,
    Verdict,
    is_supervisor,
    may_supervise,
)


@dataclass(frozen=True)
class P:
    id: str
    role: str = "volunteer"
    active: bool = True
    trainee: bool = False
    monitoring_consent: bool = False


SUP = P("l-sup", role="supervisor")

people = st.builds(
    P,
    id=st.sampled_from(["l-a", "l-b", "l-sup"]),
    role=st.sampled_from(["volunteer", "professional", "supervisor"]),
    active=st.booleans(),
    trainee=st.booleans(),
    monitoring_consent=st.booleans(),
)
modes = st.sampled_from(sorted(MODES))


@pytest.mark.parametrize("mode", sorted(MODES))
def test_by_default_trainees_and_consenting_listeners_may_be_supervised_in_every_mode(mode: str) -> None:
    """Default policy: a trainee, or a listener who agreed, may be listened to, coached or joined."""
    assert may_supervise(SUP, P("l-a", trainee=True), mode) is Verdict.ALLOWED
    assert may_supervise(SUP, P("l-a", monitoring_consent=True), mode) is Verdict.ALLOWED
    assert may_supervise(SUP, P("l-a"), mode) is Verdict.NOT_CONSENTING


def test_only_an_active_supervisor_may_supervise() -> None:
    """A volunteer, a professional or a deactivated supervisor is refused before anything else."""
    trainee = P("l-a", trainee=True)
    assert may_supervise(P("l-v"), trainee, "listen") is Verdict.NOT_SUPERVISOR
    assert may_supervise(P("l-p", role="professional"), trainee, "listen") is Verdict.NOT_SUPERVISOR
    assert (
        may_supervise(P("l-s", role="supervisor", active=False), trainee, "listen") is Verdict.NOT_SUPERVISOR
    )


def test_a_supervisor_cannot_supervise_their_own_call() -> None:
    """Supervising oneself makes no sense, even for a supervisor in training."""
    me = P("l-sup", role="supervisor", trainee=True)
    assert may_supervise(me, me, "listen") is Verdict.SELF


def test_a_policy_can_narrow_who_and_how() -> None:
    """A line may allow trainees only, consent only, or fewer modes."""
    trainees_only = SupervisionPolicy(consenting=False)
    assert (
        may_supervise(SUP, P("l-a", monitoring_consent=True), "listen", trainees_only)
        is Verdict.NOT_CONSENTING
    )
    assert may_supervise(SUP, P("l-a", trainee=True), "listen", trainees_only) is Verdict.ALLOWED
    consent_only = SupervisionPolicy(trainees=False)
    assert may_supervise(SUP, P("l-a", trainee=True), "coach", consent_only) is Verdict.NOT_CONSENTING
    no_join = SupervisionPolicy(modes=frozenset({"listen", "coach"}))
    assert may_supervise(SUP, P("l-a", trainee=True), "join", no_join) is Verdict.MODE_CLOSED
    assert may_supervise(SUP, P("l-a", trainee=True), "listen", no_join) is Verdict.ALLOWED


def test_a_policy_with_an_unknown_mode_is_refused() -> None:
    """A typo in the modes fails at once, instead of silently allowing nothing."""
    with pytest.raises(ValueError, match="barge"):
        SupervisionPolicy(modes=frozenset({"listen", "barge"}))


@given(supervisor=people, listener=people, mode=modes, trainees=st.booleans(), consenting=st.booleans())
def test_allowed_means_a_supervisor_and_a_listener_who_is_trainee_or_consented(
    supervisor: P, listener: P, mode: str, trainees: bool, consenting: bool
) -> None:
    """Whatever the people and policy: allowed exactly when an active supervisor supervises someone else
    who is a trainee (if the policy counts trainees) or consented (if it counts consent)."""
    policy = SupervisionPolicy(trainees=trainees, consenting=consenting)
    verdict = may_supervise(supervisor, listener, mode, policy)
    expected = (
        is_supervisor(supervisor)
        and supervisor.id != listener.id
        and ((trainees and listener.trainee) or (consenting and listener.monitoring_consent))
    )
    assert (verdict is Verdict.ALLOWED) == expected
    if not is_supervisor(supervisor):
        assert verdict is Verdict.NOT_SUPERVISOR


@given(supervisor=people, listener=people, mode=modes)
def test_a_listener_who_neither_trains_nor_agreed_is_never_supervised(
    supervisor: P, listener: P, mode: str
) -> None:
    """No policy widens supervision past training or consent."""
    private = P(listener.id, listener.role, listener.active, trainee=False, monitoring_consent=False)
    assert may_supervise(supervisor, private, mode) is not Verdict.ALLOWED
