"""Scenario tests of the call queue: one rule per test, commands compared exactly."""

import pytest

from helpline_pbx.core import (
    CallerArrived,
    CallerLeft,
    CallQueue,
    CallRecord,
    CallState,
    CancelOffer,
    CancelTimer,
    ClaimFailed,
    Command,
    ConnectCall,
    DrainRequested,
    EndCall,
    Event,
    ListenerLeft,
    ListenerOffline,
    ListenerOnline,
    ListenerState,
    OfferAnswered,
    OfferCall,
    OfferFailed,
    OfferFailure,
    Policy,
    RecordCall,
    SendToFallback,
    SetListenerState,
    StartTimer,
    TimerFired,
    TimerKey,
)

POLICY = Policy(
    ring_timeout=20.0,
    rest_after_call=30.0,
    missed_offer_delay=10.0,
    declined_offer_delay=5.0,
    # Pauses and shift breaks have tests of their own.
    max_missed_offers=0,
    shift_limits={},
)


def ring(call_id: str, listener_id: str) -> TimerKey:
    return TimerKey("ring", call_id, listener_id)


def rest(call_id: str, listener_id: str) -> TimerKey:
    return TimerKey("rest", call_id, listener_id)


def offer(call_id: str, listener_id: str) -> list[Command]:
    return [
        StartTimer(ring(call_id, listener_id), POLICY.ring_timeout),
        OfferCall(call_id, listener_id, f"PJSIP/{listener_id}", POLICY.ring_timeout),
    ]


def state(
    listener_id: str,
    value: ListenerState,
    *,
    call_id: str | None = None,
    until: float | None = None,
    reason: str | None = None,
) -> SetListenerState:
    return SetListenerState(listener_id, value, call_id, until, reason)


def online(listener_id: str, idle_since: float | None = None) -> ListenerOnline:
    return ListenerOnline(listener_id, f"PJSIP/{listener_id}", idle_since)


def records(commands: list[Command]) -> list[CallRecord]:
    return [c.record for c in commands if isinstance(c, RecordCall)]


def offers(commands: list[Command]) -> list[tuple[str, str]]:
    return [(c.call_id, c.listener_id) for c in commands if isinstance(c, OfferCall)]


def feed(queue: CallQueue, now: float, *events: Event) -> list[Command]:
    out: list[Command] = []
    for event in events:
        out += queue.handle(event, now)
    return out


@pytest.fixture
def queue() -> CallQueue:
    return CallQueue(POLICY)


def test_a_caller_waits_until_a_listener_comes_online(queue: CallQueue) -> None:
    assert queue.handle(CallerArrived("c1", "main"), 100.0) == []
    assert queue.waiting() == ("c1",)

    commands = queue.handle(online("alice"), 105.0)

    assert commands == [state("alice", ListenerState.AVAILABLE), *offer("c1", "alice")]
    assert queue.listener_state("alice") is ListenerState.RINGING
    assert [(c.call_id, c.state, c.listener_id) for c in queue.calls()] == [
        ("c1", CallState.RINGING, "alice")
    ]


def test_callers_are_offered_in_order_of_arrival(queue: CallQueue) -> None:
    feed(queue, 100.0, CallerArrived("c1", "main"), CallerArrived("c2", "main"))
    feed(queue, 101.0, CallerArrived("c3", "youth"))

    first = queue.handle(online("alice"), 102.0)
    second = queue.handle(online("bob"), 103.0)

    assert offers(first) == [("c1", "alice")]
    assert offers(second) == [("c2", "bob")]
    assert queue.waiting() == ("c1", "c2", "c3")


def test_the_longest_idle_listener_is_chosen_and_ties_go_by_id(queue: CallQueue) -> None:
    feed(queue, 100.0, online("carol", 90.0), online("bob", 50.0), online("anna", 50.0))
    feed(queue, 100.0, online("dave"))  # idle from now

    chosen = feed(queue, 101.0, *(CallerArrived(f"c{n}", "main") for n in range(4)))

    assert offers(chosen) == [("c0", "anna"), ("c1", "bob"), ("c2", "carol"), ("c3", "dave")]


def test_an_answered_offer_is_bridged(queue: CallQueue) -> None:
    feed(queue, 100.0, online("alice"), CallerArrived("c1", "main"))

    commands = queue.handle(OfferAnswered("c1", "alice"), 104.0)

    assert commands == [
        CancelTimer(ring("c1", "alice")),
        ConnectCall("c1", "alice"),
        state("alice", ListenerState.ON_CALL, call_id="c1"),
    ]
    assert queue.waiting() == ()
    assert queue.calls()[0].state is CallState.CONNECTED


@pytest.mark.parametrize(
    "ending", [CallerLeft("c1"), ListenerLeft("c1", "alice")], ids=["caller", "listener"]
)
def test_after_a_call_the_listener_rests_then_returns_idle_since_the_call_ended(
    queue: CallQueue, ending: Event
) -> None:
    feed(queue, 100.0, online("alice", 10.0), online("bob", 20.0), CallerArrived("c1", "main"))
    feed(queue, 104.0, OfferAnswered("c1", "alice"))

    commands = queue.handle(ending, 160.0)

    assert commands == [
        EndCall("c1", "alice"),
        RecordCall(
            CallRecord(
                call_id="c1",
                line="main",
                queued_at=100.0,
                first_offered_at=100.0,
                answered_at=104.0,
                ended_at=160.0,
                outcome="served",
                listener_id="alice",
                offers=1,
                wait_seconds=4.0,
                talk_seconds=56.0,
            )
        ),
        state("alice", ListenerState.RESTING, until=190.0, reason="after_call"),
        StartTimer(rest("c1", "alice"), 30.0),
    ]
    assert queue.idle
    # Resting: the next caller goes to bob even though alice was idle longer before her call.
    assert offers(queue.handle(CallerArrived("c2", "main"), 170.0)) == [("c2", "bob")]
    assert queue.handle(TimerFired(rest("c1", "alice")), 190.0) == [state("alice", ListenerState.AVAILABLE)]
    idle_since = {v.listener_id: v.idle_since for v in queue.listeners()}
    assert idle_since["alice"] == 160.0


def test_a_ring_timeout_moves_the_caller_on_with_their_place_kept(queue: CallQueue) -> None:
    feed(queue, 100.0, online("alice", 1.0), CallerArrived("c1", "main"))
    feed(queue, 105.0, CallerArrived("c2", "main"))

    timed_out = queue.handle(TimerFired(ring("c1", "alice")), 120.0)

    assert timed_out == [
        CancelOffer("c1", "alice"),
        state("alice", ListenerState.RESTING, until=130.0, reason="missed_offer"),
        StartTimer(rest("c1", "alice"), 10.0),
    ]
    assert queue.listener_state("alice") is ListenerState.RESTING
    # c1 arrived first, so the next listener goes to c1 rather than c2.
    assert offers(queue.handle(online("bob"), 121.0)) == [("c1", "bob")]


@pytest.mark.parametrize(
    ("reason", "delay", "why"),
    [
        ("busy", 5.0, "declined_offer"),
        ("no_answer", 10.0, "missed_offer"),
        ("unreachable", 10.0, "missed_offer"),
    ],
)
def test_a_failed_offer_rests_the_listener_and_tries_the_next(
    queue: CallQueue, reason: OfferFailure, delay: float, why: str
) -> None:
    feed(queue, 100.0, online("alice", 1.0), online("bob", 2.0), CallerArrived("c1", "main"))

    commands = queue.handle(OfferFailed("c1", "alice", reason), 103.0)

    assert commands == [
        CancelTimer(ring("c1", "alice")),
        state("alice", ListenerState.RESTING, until=103.0 + delay, reason=why),
        StartTimer(rest("c1", "alice"), delay),
        *offer("c1", "bob"),
    ]
    assert queue.calls()[0].offers == 2


def test_a_caller_alone_with_one_listener_is_offered_again_after_the_rest(
    queue: CallQueue,
) -> None:
    feed(queue, 100.0, online("alice"), CallerArrived("c1", "main"))
    feed(queue, 120.0, TimerFired(ring("c1", "alice")))
    assert queue.waiting() == ("c1",)
    assert queue.calls()[0].state is CallState.WAITING

    commands = queue.handle(TimerFired(rest("c1", "alice")), 130.0)

    assert commands == [state("alice", ListenerState.AVAILABLE), *offer("c1", "alice")]


def test_a_refused_claim_makes_the_listener_unavailable_without_touching_the_roster(
    queue: CallQueue,
) -> None:
    feed(queue, 100.0, online("alice", 1.0), online("bob", 2.0), CallerArrived("c1", "main"))

    commands = queue.handle(ClaimFailed("c1", "alice"), 100.5)

    # No SetListenerState for alice: the instance that won the claim owns her roster row.
    assert commands == [CancelTimer(ring("c1", "alice")), *offer("c1", "bob")]
    assert queue.listener_state("alice") is ListenerState.OFFLINE
    assert queue.handle(CallerArrived("c2", "main"), 101.0) == []
    assert offers(queue.handle(online("alice"), 102.0)) == [("c2", "alice")]


def test_a_caller_who_hangs_up_while_ringing_frees_the_listener_at_once(
    queue: CallQueue,
) -> None:
    feed(queue, 100.0, online("alice", 42.0), CallerArrived("c1", "main"))

    commands = queue.handle(CallerLeft("c1"), 108.0)

    assert commands == [
        CancelTimer(ring("c1", "alice")),
        CancelOffer("c1", "alice"),
        state("alice", ListenerState.AVAILABLE),
        EndCall("c1", None),
        RecordCall(
            CallRecord(
                call_id="c1",
                line="main",
                queued_at=100.0,
                first_offered_at=100.0,
                answered_at=None,
                ended_at=108.0,
                outcome="abandoned",
                listener_id=None,
                offers=1,
                wait_seconds=8.0,
                talk_seconds=0.0,
            )
        ),
    ]
    assert [(v.listener_id, v.state, v.idle_since) for v in queue.listeners()] == [
        ("alice", ListenerState.AVAILABLE, 42.0)
    ]


def test_a_caller_who_hangs_up_while_waiting_is_recorded_as_abandoned(queue: CallQueue) -> None:
    feed(queue, 100.0, CallerArrived("c1", "main"), CallerArrived("c2", "main"))

    commands = queue.handle(CallerLeft("c1"), 130.0)

    assert commands[0] == EndCall("c1", None)
    [record] = records(commands)
    assert (record.outcome, record.wait_seconds, record.offers, record.first_offered_at) == (
        "abandoned",
        30.0,
        0,
        None,
    )
    assert queue.waiting() == ("c2",)


def test_a_listener_going_offline_while_ringing_returns_the_caller_to_their_place(
    queue: CallQueue,
) -> None:
    feed(queue, 100.0, online("alice"), CallerArrived("c1", "main"))
    feed(queue, 101.0, CallerArrived("c2", "main"))

    commands = queue.handle(ListenerOffline("alice"), 102.0)

    assert commands == [
        CancelTimer(ring("c1", "alice")),
        CancelOffer("c1", "alice"),
        state("alice", ListenerState.OFFLINE, reason="off_duty"),
    ]
    assert offers(queue.handle(online("bob"), 103.0)) == [("c1", "bob")]


def test_a_listener_going_offline_during_a_call_rests_then_stays_offline(
    queue: CallQueue,
) -> None:
    feed(queue, 100.0, online("alice"), CallerArrived("c1", "main"), OfferAnswered("c1", "alice"))

    assert queue.handle(ListenerOffline("alice"), 110.0) == []
    assert queue.listener_state("alice") is ListenerState.ON_CALL
    feed(queue, 120.0, ListenerLeft("c1", "alice"))
    feed(queue, 125.0, CallerArrived("c2", "main"))

    assert queue.handle(TimerFired(rest("c1", "alice")), 150.0) == [
        state("alice", ListenerState.OFFLINE, reason="off_duty")
    ]
    assert queue.waiting() == ("c2",)


def test_a_repeated_online_report_neither_reorders_nor_double_books(queue: CallQueue) -> None:
    feed(queue, 100.0, online("alice", 10.0), online("bob", 20.0))
    assert queue.handle(online("alice", 99.0), 101.0) == []
    feed(queue, 102.0, CallerArrived("c1", "main"), OfferAnswered("c1", "alice"))

    again = queue.handle(ListenerOnline("alice", "PJSIP/alice-desk", None), 103.0)

    assert again == []
    assert offers(queue.handle(CallerArrived("c2", "main"), 104.0)) == [("c2", "bob")]
    [alice, _] = queue.listeners()
    assert (alice.state, alice.endpoint, alice.call_id) == (
        ListenerState.ON_CALL,
        "PJSIP/alice-desk",
        "c1",
    )


def test_a_listener_offline_then_online_again_is_available_idle_from_now(
    queue: CallQueue,
) -> None:
    feed(queue, 100.0, online("alice", 10.0), ListenerOffline("alice"))

    commands = queue.handle(online("alice"), 150.0)

    assert commands == [state("alice", ListenerState.AVAILABLE)]
    assert queue.listeners()[0].idle_since == 150.0


def _busy_queue() -> CallQueue:
    """c1 bridged to alice, c2 ringing bob (after missing carol), carol resting, c3 waiting."""
    queue = CallQueue(POLICY)
    feed(queue, 100.0, online("alice", 1.0), online("carol", 2.0), online("bob", 3.0))
    feed(queue, 100.0, CallerArrived("c1", "main"), OfferAnswered("c1", "alice"))
    feed(queue, 101.0, CallerArrived("c2", "main"), OfferFailed("c2", "carol", "no_answer"))
    feed(queue, 102.0, CallerArrived("c3", "main"))
    assert offers(feed(queue, 103.0)) == []
    return queue


STALE_EVENTS: list[Event] = [
    CallerArrived("c1", "main"),  # duplicate of a live call
    CallerLeft("nobody"),
    ClaimFailed("c2", "carol"),  # carol's offer is over
    ClaimFailed("c1", "alice"),  # c1 is already bridged
    OfferAnswered("c2", "carol"),
    OfferAnswered("c3", "bob"),  # bob rings for c2, not c3
    OfferAnswered("ghost", "alice"),
    OfferFailed("c1", "alice", "busy"),
    OfferFailed("c2", "alice", "no_answer"),
    ListenerLeft("c2", "bob"),  # c2 is not bridged
    ListenerLeft("c1", "bob"),
    ListenerOffline("nobody"),
    TimerFired(TimerKey("ring", "c1", "alice")),  # cancelled when alice answered
    TimerFired(TimerKey("ring", "c2", "carol")),  # superseded by the failure
    TimerFired(TimerKey("ring", None, "bob")),
    TimerFired(TimerKey("rest", "c1", "alice")),  # alice is on a call, not resting
    TimerFired(TimerKey("rest", "c9", "carol")),  # not carol's current rest
    TimerFired(TimerKey("rest", "c2", "nobody")),
]


@pytest.mark.parametrize("event", STALE_EVENTS, ids=repr)
def test_a_stale_or_unknown_event_changes_nothing(event: Event) -> None:
    queue = _busy_queue()
    before = (queue.calls(), queue.listeners(), queue.waiting(), queue.draining)

    assert queue.handle(event, 104.0) == []
    assert (queue.calls(), queue.listeners(), queue.waiting(), queue.draining) == before


def test_a_late_duplicate_arrival_cannot_resurrect_an_ended_call(queue: CallQueue) -> None:
    feed(queue, 100.0, CallerArrived("c1", "main"), CallerLeft("c1"))

    assert queue.handle(CallerArrived("c1", "main"), 101.0) == []
    assert queue.idle


def test_draining_sends_queued_callers_to_the_fallback_and_keeps_bridged_calls() -> None:
    queue = _busy_queue()

    commands = queue.handle(DrainRequested(), 110.0)

    assert [c for c in commands if not isinstance(c, RecordCall)] == [
        CancelTimer(ring("c2", "bob")),
        CancelOffer("c2", "bob"),
        state("bob", ListenerState.AVAILABLE),
        SendToFallback("c2"),
        SendToFallback("c3"),
    ]
    assert [(r.call_id, r.outcome, r.offers) for r in records(commands)] == [
        ("c2", "fallback", 2),
        ("c3", "fallback", 0),
    ]
    assert queue.draining
    assert [(c.call_id, c.state) for c in queue.calls()] == [("c1", CallState.CONNECTED)]
    assert queue.handle(DrainRequested(), 111.0) == []

    late = queue.handle(CallerArrived("c4", "main"), 112.0)

    assert late[0] == SendToFallback("c4")
    assert [(r.call_id, r.outcome, r.wait_seconds) for r in records(late)] == [("c4", "fallback", 0.0)]
    # The bridged call still ends normally, and nobody is offered a call while draining.
    ended = queue.handle(CallerLeft("c1"), 120.0)
    assert [r.outcome for r in records(ended)] == ["served"]
    assert offers(feed(queue, 200.0, TimerFired(rest("c2", "carol")), online("dan"))) == []
    assert queue.idle


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ring_timeout": 0.0},
        {"rest_after_call": -1.0},
        {"missed_offer_delay": float("nan")},
        {"declined_offer_delay": -0.1},
    ],
)
def test_a_policy_with_impossible_timings_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        Policy(**kwargs)


def test_the_default_policy_matches_the_documented_timings() -> None:
    assert Policy() == Policy(
        ring_timeout=20.0, rest_after_call=30.0, missed_offer_delay=10.0, declined_offer_delay=10.0
    )


# -- after a restart ------------------------------------------------------------------------------


def test_re_adopted_callers_keep_their_arrival_time_and_order() -> None:
    from helpline_pbx.core import CallerArrived, CallQueue, ListenerOnline, OfferCall, Policy, RecordCall

    queue = CallQueue(Policy())
    queue.handle(CallerArrived("c-old", "l", arrived_at=100.0), now=500.0)
    queue.handle(CallerArrived("c-new", "l"), now=501.0)
    out = queue.handle(ListenerOnline("a", "pa"), now=502.0)
    [offer] = [c for c in out if isinstance(c, OfferCall)]
    assert offer.call_id == "c-old"
    from helpline_pbx.core import CallerLeft

    [record] = [c.record for c in queue.handle(CallerLeft("c-old"), now=510.0) if isinstance(c, RecordCall)]
    assert record.queued_at == 100.0
    assert record.wait_seconds == 410.0


def test_a_resumed_call_keeps_its_listener_busy_then_rests_them() -> None:
    from helpline_pbx.core import (
        CallerArrived,
        CallerLeft,
        CallQueue,
        CallResumed,
        ListenerOnline,
        ListenerState,
        OfferCall,
        Policy,
        RecordCall,
    )

    queue = CallQueue(Policy(rest_after_call=30))
    queue.handle(CallResumed("c-1", "l", "a", "pa", arrived_at=10.0, answered_at=20.0), now=100.0)
    assert queue.listener_state("a") is ListenerState.ON_CALL
    # A duplicate ListenerOnline (the roster sync after the restart) must not free them.
    queue.handle(ListenerOnline("a", "pa"), now=101.0)
    out = queue.handle(CallerArrived("c-2", "l"), now=102.0)
    assert not [c for c in out if isinstance(c, OfferCall)]
    out = queue.handle(CallerLeft("c-1"), now=130.0)
    [record] = [c.record for c in out if isinstance(c, RecordCall)]
    assert (record.outcome, record.listener_id, record.talk_seconds) == ("served", "a", 110.0)
    assert queue.listener_state("a") is ListenerState.RESTING
    # Resuming a call that already ended is a late duplicate: ignored.
    assert (
        queue.handle(CallResumed("c-1", "l", "a", "pa", arrived_at=10.0, answered_at=20.0), now=131.0) == []
    )
