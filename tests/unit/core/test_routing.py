"""Routing by skills, language and role, with reach widening over waiting time (pure core)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from helpline_pbx.core import (
    CallerArrived,
    CallerLeft,
    CallQueue,
    CancelTimer,
    ListenerOnline,
    OfferCall,
    Policy,
    StartTimer,
    TimerFired,
)
from helpline_pbx.core.routing import (
    PROFESSIONAL,
    SUPERVISOR,
    VOLUNTEER,
    Profile,
    Requirements,
    escalated,
    rank,
    volunteers_first,
)

POLICY = Policy(
    ring_timeout=20,
    rest_after_call=30,
    missed_offer_delay=10,
    declined_offer_delay=10,
    # Pauses and shift breaks have tests of their own.
    max_missed_offers=0,
    shift_limits={},
)


def offers(commands: list[object]) -> list[OfferCall]:
    return [c for c in commands if isinstance(c, OfferCall)]


def test_a_listener_without_the_skill_or_language_is_never_offered_the_call() -> None:
    queue = CallQueue(POLICY)
    queue.handle(ListenerOnline("plain", "p", profile=Profile(skills=frozenset())), now=0)
    queue.handle(
        ListenerOnline(
            "english", "e", profile=Profile(skills=frozenset({"bullying"}), languages=frozenset({"en"}))
        ),
        now=1,
    )
    out = queue.handle(
        CallerArrived(
            "c1", "youth", requirements=Requirements(skills=frozenset({"bullying"}), language="fr")
        ),
        now=2,
    )
    assert offers(out) == []
    out = queue.handle(
        ListenerOnline("trained", "t", profile=Profile(skills=frozenset({"bullying", "anxiety"}))), now=3
    )
    assert [o.listener_id for o in offers(out)] == ["trained"]


def test_volunteers_first_then_professionals_too_after_the_wait_without_losing_place() -> None:
    queue = CallQueue(POLICY)
    queue.handle(ListenerOnline("pro", "p", profile=Profile(role=PROFESSIONAL)), now=0)
    needs = Requirements(reach=volunteers_first(90))
    out = queue.handle(CallerArrived("first", "adults", requirements=needs), now=10)
    assert offers(out) == []
    [timer] = [c for c in out if isinstance(c, StartTimer)]
    assert timer.delay == 90
    out = queue.handle(CallerArrived("second", "adults", requirements=needs), now=20)
    assert offers(out) == []
    # At 90 s of waiting the first caller reaches professionals, and is still first in line.
    out = queue.handle(TimerFired(timer.key), now=100)
    assert [(o.call_id, o.listener_id) for o in offers(out)] == [("first", "pro")]


def test_an_urgent_caller_reaches_a_professional_first_and_goes_ahead() -> None:
    queue = CallQueue(POLICY)
    queue.handle(CallerArrived("calm", "adults"), now=0)  # nobody on duty yet
    queue.handle(CallerArrived("urgent", "adults", requirements=escalated(Requirements())), now=5)
    queue.handle(ListenerOnline("vol", "v", idle_since=0, profile=Profile(role=VOLUNTEER)), now=6)
    # The volunteer takes the calm caller: the urgent one waits for a professional.
    out = queue.handle(ListenerOnline("pro", "p", idle_since=1, profile=Profile(role=PROFESSIONAL)), now=7)
    assert [(o.call_id, o.listener_id) for o in offers(out)] == [("urgent", "pro")]


def test_an_ended_call_cancels_its_pending_widenings() -> None:
    queue = CallQueue(POLICY)
    out = queue.handle(
        CallerArrived("c", "adults", requirements=Requirements(reach=volunteers_first(90))), now=0
    )
    [timer] = [c for c in out if isinstance(c, StartTimer)]
    out = queue.handle(CallerLeft("c"), now=5)
    assert CancelTimer(timer.key) in out
    assert queue.handle(TimerFired(timer.key), now=90) == []


roles = st.sampled_from([VOLUNTEER, PROFESSIONAL, SUPERVISOR])
skills = st.frozensets(st.sampled_from(["bullying", "identity", "anxiety", "violence"]), max_size=3)
profiles = st.builds(
    Profile, role=roles, skills=skills, languages=st.frozensets(st.sampled_from(["fr", "en"]), min_size=1)
)
requirements = st.builds(
    Requirements,
    skills=skills,
    language=st.sampled_from([None, "fr", "en"]),
    priority=st.integers(0, 2),
    reach=st.sampled_from([Requirements().reach, volunteers_first(30), escalated(Requirements()).reach]),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(profiles), min_size=1, max_size=5),
    st.lists(st.tuples(requirements, st.integers(0, 60)), min_size=1, max_size=8),
    st.lists(st.integers(0, 200), max_size=6),
)
def test_every_offer_respects_skills_language_reach_and_the_queue_order(
    listeners: list[tuple[Profile]], calls: list[tuple[Requirements, int]], ticks: list[int]
) -> None:
    """No listener is offered a call they may not take, and within a priority an offer always goes to the
    earliest waiting caller that listener may take: widening never reorders callers."""
    queue = CallQueue(POLICY)
    profile_of = {}
    arrival: dict[str, tuple[float, Requirements]] = {}
    events: list[tuple[float, object]] = []
    for n, (profile,) in enumerate(listeners):
        profile_of[f"l{n}"] = profile
        events.append((float(n), ListenerOnline(f"l{n}", f"e{n}", idle_since=float(n), profile=profile)))
    for n, (needs, at) in enumerate(calls):
        arrival[f"c{n}"] = (float(at), needs)
        events.append(
            (float(at) + 0.5, CallerArrived(f"c{n}", "line", arrived_at=float(at), requirements=needs))
        )
    events.sort(key=lambda e: e[0])
    pending: list[StartTimer] = []
    waiting: set[str] = set()
    for tick in sorted(ticks):
        events.append((float(tick), None))
    events.sort(key=lambda e: e[0])
    for now, event in events:
        if event is None:
            fired = [t for t in pending if t.key.kind == "escalate"]
            out: list[object] = []
            for t in fired:
                pending.remove(t)
                out += queue.handle(TimerFired(t.key), now=now)
        else:
            out = queue.handle(event, now=now)  # type: ignore[arg-type]
            if isinstance(event, CallerArrived):
                waiting.add(event.call_id)
        pending += [c for c in out if isinstance(c, StartTimer)]
        for offer in offers(out):
            at, needs = arrival[offer.call_id]
            profile = profile_of[offer.listener_id]
            assert rank(needs, profile, now - at) is not None, "offered to a listener who may not take it"
            waiting.discard(offer.call_id)
            earlier = [
                c
                for c in waiting
                if arrival[c][1].priority == needs.priority
                and arrival[c][0] < at
                and rank(arrival[c][1], profile, now - arrival[c][0]) is not None
            ]
            assert not earlier, f"{offer.call_id} overtook {earlier} for {offer.listener_id}"


def test_priority_orders_the_queue_and_arrival_breaks_ties() -> None:
    queue = CallQueue(POLICY)
    queue.handle(CallerArrived("early", "l"), now=0)
    queue.handle(CallerArrived("later-but-urgent", "l", requirements=Requirements(priority=5)), now=1)
    queue.handle(CallerArrived("last", "l"), now=2)
    out = queue.handle(ListenerOnline("a", "pa"), now=3)
    assert [o.call_id for o in offers(out)] == ["later-but-urgent"]
    out = queue.handle(ListenerOnline("b", "pb"), now=4)
    assert [o.call_id for o in offers(out)] == ["early"]
