"""Listeners protected by the core: pauses (their own, after missed offers, shift breaks), unregistered
phones, rest extensions, difficult calls and their debrief, shift limits, help within a call."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from helpline_pbx.core import (
    CallerArrived,
    CallerChoseAlternatives,
    CallerLeft,
    CallMarkedDifficult,
    CallQueue,
    CallResumed,
    Command,
    EndCall,
    Event,
    HelpRequested,
    JoinCall,
    ListenerLeft,
    ListenerOffline,
    ListenerOnline,
    ListenerPaused,
    ListenerState,
    NotifyListener,
    OfferAnswered,
    OfferCall,
    OfferFailed,
    PhoneReachability,
    Policy,
    RecordCall,
    ReleaseListener,
    RequestDebrief,
    RestExtended,
    SendToFallback,
    SetListenerState,
    ShiftLimit,
    StartTimer,
    TimerFired,
    TimerKey,
)
from helpline_pbx.core.routing import PROFESSIONAL, SUPERVISOR, VOLUNTEER, Profile, Requirements

POLICY = Policy(
    ring_timeout=20.0,
    rest_after_call=30.0,
    missed_offer_delay=10.0,
    declined_offer_delay=5.0,
    max_missed_offers=2,
    rest_extension=60.0,
    rest_after_difficult=600.0,
    difficult_window=300.0,
    shift_break=900.0,
    shift_limits={VOLUNTEER: ShiftLimit(max_on_duty=3600.0, max_calls=2)},
)


def online(listener_id: str, role: str = VOLUNTEER, **kwargs: object) -> ListenerOnline:
    return ListenerOnline(listener_id, f"PJSIP/{listener_id}", profile=Profile(role=role), **kwargs)  # type: ignore[arg-type]


def offers(commands: list[Command]) -> list[tuple[str, str]]:
    return [(c.call_id, c.listener_id) for c in commands if isinstance(c, OfferCall)]


def states(commands: list[Command]) -> list[SetListenerState]:
    return [c for c in commands if isinstance(c, SetListenerState)]


def state_of(queue: CallQueue, listener_id: str) -> ListenerState | None:
    return queue.listener_state(listener_id)


def serve(queue: CallQueue, call_id: str, listener_id: str, now: float, talk: float = 60.0) -> list[Command]:
    """A caller arrives, the listener answers, talks, hangs up."""
    out = queue.handle(CallerArrived(call_id, "main"), now)
    assert offers(out) == [(call_id, listener_id)]
    out += queue.handle(OfferAnswered(call_id, listener_id), now + 1)
    out += queue.handle(ListenerLeft(call_id, listener_id), now + 1 + talk)
    return out


def test_a_listener_who_misses_offers_in_a_row_is_paused_and_an_answer_resets_the_count() -> None:
    queue = CallQueue(POLICY)
    queue.handle(online("ana"), 0.0)
    queue.handle(CallerArrived("c1", "main"), 1.0)
    out = queue.handle(OfferFailed("c1", "ana", "no_answer"), 2.0)
    assert states(out)[-1].state is ListenerState.RESTING
    out = queue.handle(TimerFired(TimerKey("rest", "c1", "ana")), 12.0)
    assert offers(out) == [("c1", "ana")]
    out = queue.handle(TimerFired(TimerKey("ring", "c1", "ana")), 32.0)
    paused = states(out)[-1]
    assert (paused.state, paused.reason, paused.presence) == (ListenerState.PAUSED, "missed_offers", "paused")
    # Paused: the caller waits, never offered to them again, until they resume.
    assert offers(queue.handle(TimerFired(TimerKey("rest", "c1", "ana")), 50.0)) == []
    out = queue.handle(online("ana"), 60.0)
    assert offers(out) == [("c1", "ana")]
    queue.handle(OfferAnswered("c1", "ana"), 61.0)
    queue.handle(ListenerLeft("c1", "ana"), 62.0)
    queue.handle(TimerFired(TimerKey("rest", "c1", "ana")), 100.0)
    # One miss after an answer is a rest again, not a pause.
    queue.handle(CallerArrived("c2", "main"), 101.0)
    out = queue.handle(OfferFailed("c2", "ana", "no_answer"), 102.0)
    assert states(out)[-1].state is ListenerState.RESTING


def test_declining_an_offer_is_no_miss() -> None:
    queue = CallQueue(POLICY)
    queue.handle(online("ana"), 0.0)
    for n in range(3):
        queue.handle(CallerArrived(f"c{n}", "main"), 10.0 * n)
        out = queue.handle(OfferFailed(f"c{n}", "ana", "busy"), 10.0 * n + 1)
        assert states(out)[-1].reason == "declined_offer"
        queue.handle(CallerLeft(f"c{n}"), 10.0 * n + 2)
        queue.handle(TimerFired(TimerKey("rest", f"c{n}", "ana")), 10.0 * n + 7)
    assert state_of(queue, "ana") is ListenerState.AVAILABLE


def test_an_unregistered_phone_is_never_rung() -> None:
    queue = CallQueue(POLICY)
    queue.handle(online("ana", reachable=False), 0.0)
    assert offers(queue.handle(CallerArrived("c1", "main"), 1.0)) == []
    assert offers(queue.handle(PhoneReachability("ana", True), 2.0)) == [("c1", "ana")]
    queue.handle(CallerLeft("c1"), 3.0)
    queue.handle(PhoneReachability("ana", False), 4.0)
    assert offers(queue.handle(CallerArrived("c2", "main"), 5.0)) == []


def test_a_pause_waits_for_the_call_then_holds_until_resume() -> None:
    queue = CallQueue(POLICY)
    queue.handle(online("ana"), 0.0)
    queue.handle(CallerArrived("c1", "main"), 1.0)
    queue.handle(OfferAnswered("c1", "ana"), 2.0)
    assert states(queue.handle(ListenerPaused("ana", "break"), 3.0)) == []
    queue.handle(ListenerLeft("c1", "ana"), 10.0)
    out = queue.handle(TimerFired(TimerKey("rest", "c1", "ana")), 40.0)
    assert [(s.state, s.reason) for s in states(out)] == [(ListenerState.PAUSED, "break")]
    assert offers(queue.handle(CallerArrived("c2", "main"), 41.0)) == []
    assert offers(queue.handle(online("ana"), 42.0)) == [("c2", "ana")]


def test_signed_out_during_the_rest_and_back_paused_is_not_offered_when_the_rest_ends() -> None:
    """A listener signs out during the rest after a call, then comes back paused before it ends (found by
    the every-event state machine): the rest's end finds them paused, not available."""
    queue = CallQueue(POLICY)
    queue.handle(online("ana"), 0.0)
    serve(queue, "c1", "ana", 1.0, talk=5.0)
    queue.handle(ListenerOffline("ana"), 10.0)
    queue.handle(online("ana", paused="meeting"), 12.0)
    queue.handle(CallerArrived("c2", "main"), 13.0)
    out = queue.handle(TimerFired(TimerKey("rest", "c1", "ana")), 40.0)
    assert offers(out) == []
    assert state_of(queue, "ana") is ListenerState.PAUSED
    assert offers(queue.handle(online("ana"), 41.0)) == [("c2", "ana")]


def test_pausing_while_ringing_gives_the_caller_back_to_the_queue() -> None:
    queue = CallQueue(POLICY)
    queue.handle(online("ana"), 0.0)
    queue.handle(CallerArrived("c1", "main"), 1.0)
    out = queue.handle(ListenerPaused("ana", "break"), 2.0)
    assert state_of(queue, "ana") is ListenerState.PAUSED
    assert queue.position("c1") == 1
    assert offers(out) == []


def test_a_rest_can_be_extended_and_a_short_one_taken_when_free() -> None:
    queue = CallQueue(POLICY)
    queue.handle(online("ana"), 0.0)
    serve(queue, "c1", "ana", 1.0)
    out = queue.handle(RestExtended("ana"), 70.0)
    [extended] = states(out)
    assert extended.until == 62.0 + 30.0 + 60.0
    assert StartTimer(TimerKey("rest", "c1", "ana"), extended.until - 70.0) in out
    queue.handle(TimerFired(TimerKey("rest", "c1", "ana")), extended.until)
    assert state_of(queue, "ana") is ListenerState.AVAILABLE
    out = queue.handle(RestExtended("ana"), 200.0)
    assert states(out)[-1].state is ListenerState.RESTING
    assert offers(queue.handle(CallerArrived("c2", "main"), 201.0)) == []


def test_a_call_marked_difficult_during_it_brings_a_longer_rest_and_a_debrief() -> None:
    queue = CallQueue(POLICY)
    queue.handle(online("ana"), 0.0)
    queue.handle(CallerArrived("c1", "main"), 1.0)
    queue.handle(OfferAnswered("c1", "ana"), 2.0)
    queue.handle(CallMarkedDifficult("ana"), 30.0)
    out = queue.handle(ListenerLeft("c1", "ana"), 100.0)
    [after] = states(out)
    assert (after.state, after.until, after.reason) == (
        ListenerState.AWAITING_DEBRIEF,
        700.0,
        "difficult_call",
    )
    assert RequestDebrief("ana", "c1") in out
    assert offers(queue.handle(CallerArrived("c2", "main"), 200.0)) == []


def test_a_call_marked_difficult_right_after_it_counts_once_and_not_too_late() -> None:
    queue = CallQueue(POLICY)
    queue.handle(online("ana"), 0.0)
    serve(queue, "c1", "ana", 1.0)  # ends at 62
    out = queue.handle(CallMarkedDifficult("ana"), 70.0)
    assert RequestDebrief("ana", "c1") in out
    assert state_of(queue, "ana") is ListenerState.AWAITING_DEBRIEF
    assert queue.handle(CallMarkedDifficult("ana"), 71.0) == []
    late = CallQueue(POLICY)
    late.handle(online("ben"), 0.0)
    serve(late, "c1", "ben", 1.0)
    late.handle(TimerFired(TimerKey("rest", "c1", "ben")), 92.0)
    assert not any(isinstance(c, RequestDebrief) for c in late.handle(CallMarkedDifficult("ben"), 62.0 + 301))


def test_a_shift_limit_of_calls_brings_a_break_with_a_spoken_notice_then_a_new_shift() -> None:
    queue = CallQueue(POLICY)
    queue.handle(online("ana"), 0.0)
    serve(queue, "c1", "ana", 1.0)
    queue.handle(TimerFired(TimerKey("rest", "c1", "ana")), 100.0)
    serve(queue, "c2", "ana", 101.0)
    out = queue.handle(TimerFired(TimerKey("rest", "c2", "ana")), 200.0)
    [pause] = states(out)
    assert (pause.state, pause.reason, pause.presence) == (ListenerState.PAUSED, "shift_limit", "paused")
    assert NotifyListener("ana", "PJSIP/ana", "shift-limit") in out
    assert offers(queue.handle(CallerArrived("c3", "main"), 201.0)) == []
    # Resuming does not cut the break short.
    assert offers(queue.handle(online("ana"), 202.0)) == []
    out = queue.handle(TimerFired(TimerKey("shift", "break", "ana")), 1100.0)
    assert any(s.state is ListenerState.AVAILABLE and s.presence == "on" for s in states(out))
    assert offers(out) == [("c3", "ana")]


def test_a_shift_limit_of_time_sends_an_idle_listener_on_a_break() -> None:
    queue = CallQueue(POLICY)
    out = queue.handle(online("ana"), 0.0)
    assert StartTimer(TimerKey("shift", None, "ana"), 3600.0) in out
    out = queue.handle(TimerFired(TimerKey("shift", None, "ana")), 3600.0)
    assert states(out)[-1].reason == "shift_limit"


def test_a_restarted_service_keeps_counting_the_shift() -> None:
    queue = CallQueue(POLICY)
    out = queue.handle(online("ana", on_duty_since=0.0, shift_calls=2), 1000.0)
    assert states(out)[-1].reason == "shift_limit"
    assert StartTimer(TimerKey("shift", None, "ana"), 2600.0) in out


def test_a_professional_joins_a_call_ahead_of_a_waiting_caller() -> None:
    q2 = CallQueue(POLICY)
    q2.handle(online("ana"), 0.0)
    q2.handle(online("pro", PROFESSIONAL, idle_since=-10.0), 0.5)
    q2.handle(online("vol"), 0.6)
    q2.handle(CallerArrived("c1", "main"), 1.0)  # the professional, idle longest, takes it
    q2.handle(OfferAnswered("c1", "pro"), 2.0)
    q2.handle(CallerArrived("c2", "main"), 3.0)
    q2.handle(OfferAnswered("c2", "ana"), 4.0)
    # vol is free; a help request for a professional finds none free: nothing rings.
    assert offers(q2.handle(HelpRequested("c2", "ana", "professional"), 5.0)) == []
    # pro ends their call; after the rest they are asked into c2 before any new caller.
    q2.handle(ListenerLeft("c1", "pro"), 6.0)
    q2.handle(CallerArrived("c3", "main"), 7.0)  # goes to vol
    q2.handle(CallerArrived("c4", "main"), 8.0)  # waits
    out = q2.handle(TimerFired(TimerKey("rest", "c1", "pro")), 40.0)
    assert offers(out) == [("c2", "pro")]
    assert next(c for c in out if isinstance(c, OfferCall)).helper
    out = q2.handle(OfferAnswered("c2", "pro"), 41.0)
    assert JoinCall("c2", "pro") in out
    # The helper leaves: the listener goes on with the caller; the helper rests.
    out = q2.handle(ListenerLeft("c2", "pro"), 100.0)
    assert not any(isinstance(c, (EndCall, RecordCall)) for c in out)
    assert q2.listener_state("pro") is ListenerState.RESTING
    out = q2.handle(ListenerLeft("c2", "ana"), 120.0)
    [record] = [c.record for c in out if isinstance(c, RecordCall)]
    assert (record.outcome, record.listener_id) == ("served", "ana")


def test_a_handover_leaves_the_professional_with_the_caller() -> None:
    queue = CallQueue(POLICY)
    queue.handle(online("ana"), 0.0)
    queue.handle(CallerArrived("c1", "main"), 1.0)
    queue.handle(OfferAnswered("c1", "ana"), 2.0)
    queue.handle(online("pro", PROFESSIONAL), 3.0)
    out = queue.handle(HelpRequested("c1", "ana", "professional", handover=True), 10.0)
    assert offers(out) == [("c1", "pro")]
    out = queue.handle(OfferAnswered("c1", "pro"), 12.0)
    assert JoinCall("c1", "pro") in out
    assert ReleaseListener("c1", "ana") in out
    assert queue.listener_state("ana") is ListenerState.RESTING
    # The released leg's end is no news; the professional's hang-up ends the call, served by them.
    out = queue.handle(ListenerLeft("c1", "pro"), 100.0)
    [record] = [c.record for c in out if isinstance(c, RecordCall)]
    assert record.listener_id == "pro"


def test_the_listener_leaving_a_three_way_call_leaves_the_helper_with_the_caller() -> None:
    queue = CallQueue(POLICY)
    queue.handle(online("ana"), 0.0)
    queue.handle(CallerArrived("c1", "main"), 1.0)
    queue.handle(OfferAnswered("c1", "ana"), 2.0)
    queue.handle(online("sup", SUPERVISOR), 3.0)
    assert offers(queue.handle(HelpRequested("c1", "ana", "supervisor"), 4.0)) == [("c1", "sup")]
    queue.handle(OfferAnswered("c1", "sup"), 5.0)
    out = queue.handle(ListenerLeft("c1", "ana"), 50.0)
    assert not any(isinstance(c, EndCall) for c in out)
    out = queue.handle(CallerLeft("c1"), 80.0)
    [record] = [c.record for c in out if isinstance(c, RecordCall)]
    assert record.listener_id == "sup"
    assert queue.listener_state("sup") is ListenerState.RESTING


def test_a_helper_who_does_not_answer_is_replaced_a_few_times_then_the_request_ends() -> None:
    queue = CallQueue(POLICY)
    queue.handle(online("ana"), 0.0)
    queue.handle(CallerArrived("c1", "main"), 1.0)
    queue.handle(OfferAnswered("c1", "ana"), 2.0)
    for n in range(4):
        queue.handle(online(f"pro{n}", PROFESSIONAL), 3.0 + n)
    queue.handle(HelpRequested("c1", "ana", "professional"), 10.0)
    rung = []
    for _ in range(4):
        ringing = [v.listener_id for v in queue.listeners() if v.state is ListenerState.RINGING]
        if not ringing:
            break
        rung += ringing
        queue.handle(OfferFailed("c1", ringing[0], "no_answer"), 20.0)
    assert len(rung) == 3
    assert queue.listener_state("ana") is ListenerState.ON_CALL


def test_a_caller_may_leave_the_queue_for_the_alternatives() -> None:
    queue = CallQueue(POLICY)
    queue.handle(CallerArrived("c1", "main"), 0.0)
    out = queue.handle(CallerChoseAlternatives("c1"), 90.0)
    assert SendToFallback("c1", "helpline-alternatives") in out
    [record] = [c.record for c in out if isinstance(c, RecordCall)]
    assert record.outcome == "alternatives"
    assert queue.position("c1") is None


def test_position_counts_the_lines_callers_by_priority_then_arrival() -> None:
    queue = CallQueue(POLICY)
    queue.handle(CallerArrived("c1", "main"), 0.0)
    queue.handle(CallerArrived("y1", "youth"), 0.5)
    queue.handle(CallerArrived("c2", "main"), 1.0)
    queue.handle(CallerArrived("c3", "main", requirements=Requirements(priority=10)), 2.0)
    assert [queue.position(c) for c in ("c1", "c2", "c3", "y1")] == [2, 3, 1, 1]


def test_listeners_on_duty_for_a_call_are_those_who_may_ever_take_it() -> None:
    queue = CallQueue(POLICY)
    queue.handle(online("ana"), 0.0)
    queue.handle(ListenerOnline("law", "PJSIP/law", profile=Profile(skills=frozenset({"juridique"}))), 0.1)
    queue.handle(online("far", reachable=False), 0.2)
    queue.handle(ListenerOnline("tom", "PJSIP/tom", profile=Profile(trainee=True)), 0.3)
    queue.handle(ListenerPaused("ana", "break"), 0.4)
    queue.handle(CallerArrived("c1", "main", requirements=Requirements(skills=frozenset({"juridique"}))), 1.0)
    assert queue.on_duty() == 2  # law and tom: ana is paused, far's phone is not registered
    assert queue.on_duty("c1") == 1  # only law may ever take it


def test_a_chosen_skill_nobody_on_duty_holds_is_dropped() -> None:
    queue = CallQueue(POLICY)
    queue.handle(online("ana"), 0.0)
    legal = Requirements(wanted=frozenset({"juridique"}))
    assert offers(queue.handle(CallerArrived("c1", "main", requirements=legal), 1.0)) == [("c1", "ana")]
    queue2 = CallQueue(POLICY)
    queue2.handle(online("ana"), 0.0)
    lawyer = ListenerOnline("law", "PJSIP/law", profile=Profile(skills=frozenset({"juridique"})))
    queue2.handle(lawyer, 0.5)
    queue2.handle(CallerArrived("c0", "main"), 0.6)  # ana, idle longest, takes it
    out = queue2.handle(CallerArrived("c1", "main", requirements=legal), 1.0)
    assert offers(out) == [("c1", "law")]


def test_practice_calls_reach_trainees_only_and_are_marked() -> None:
    queue = CallQueue(POLICY)
    queue.handle(online("ana"), 0.0)
    trainee = ListenerOnline("tom", "PJSIP/tom", profile=Profile(trainee=True))
    queue.handle(trainee, 1.0)
    out = queue.handle(CallerArrived("p1", "training", requirements=Requirements(practice=True)), 2.0)
    assert offers(out) == [("p1", "tom")]
    out = queue.handle(CallerArrived("c1", "main"), 3.0)
    assert offers(out) == [("c1", "ana")]
    queue.handle(OfferAnswered("p1", "tom"), 4.0)
    out = queue.handle(ListenerLeft("p1", "tom"), 5.0)
    [record] = [c.record for c in out if isinstance(c, RecordCall)]
    assert record.practice


# ---- the state rules, over random histories ------------------------------------------------------------

LISTENERS = ("l0", "l1", "l2")
BLOCKED = (ListenerState.RESTING, ListenerState.PAUSED, ListenerState.AWAITING_DEBRIEF)

steps = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "arrive",
                "leave",
                "online",
                "offline",
                "pause",
                "reach",
                "unreach",
                "answer",
                "fail",
                "hangup",
                "extend",
                "difficult",
                "help",
                "timer",
                "alternatives",
            ]
        ),
        st.integers(0, 9),
        st.integers(0, 2),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_nobody_resting_paused_awaiting_debrief_unreachable_or_past_a_shift_limit_is_offered_a_call(
    plan: list[tuple[str, int, int]],
) -> None:
    queue = CallQueue(POLICY)
    timers: dict[TimerKey, float] = {}
    now = 0.0
    calls = 0
    for action, n, who in plan:
        now += 7.0
        listener = LISTENERS[who]
        event: Event | None = None
        ringing = [v for v in queue.listeners() if v.state is ListenerState.RINGING and v.call_id]
        talking = [v for v in queue.listeners() if v.state is ListenerState.ON_CALL and v.call_id]
        if action == "arrive":
            event = CallerArrived(f"c{calls}", "main")
            calls += 1
        elif action == "leave":
            event = CallerLeft(f"c{n % max(calls, 1)}")
        elif action == "alternatives":
            event = CallerChoseAlternatives(f"c{n % max(calls, 1)}")
        elif action == "online":
            event = online(listener, PROFESSIONAL if who == 2 else VOLUNTEER, reachable=n % 3 != 0)
        elif action == "offline":
            event = ListenerOffline(listener)
        elif action == "pause":
            event = ListenerPaused(listener, "break")
        elif action in ("reach", "unreach"):
            event = PhoneReachability(listener, action == "reach")
        elif action == "answer" and ringing:
            view = ringing[n % len(ringing)]
            event = OfferAnswered(view.call_id or "", view.listener_id)
        elif action == "fail" and ringing:
            view = ringing[n % len(ringing)]
            event = OfferFailed(view.call_id or "", view.listener_id, "no_answer")
        elif action == "hangup" and talking:
            view = talking[n % len(talking)]
            event = ListenerLeft(view.call_id or "", view.listener_id)
        elif action == "extend":
            event = RestExtended(listener)
        elif action == "difficult":
            event = CallMarkedDifficult(listener)
        elif action == "help" and talking:
            view = talking[n % len(talking)]
            event = HelpRequested(view.call_id or "", view.listener_id, "professional", handover=n % 2 == 0)
        elif action == "timer" and timers:
            key = sorted(timers, key=lambda k: (timers[k], str(k)))[0]
            now = max(now, timers.pop(key))
            event = TimerFired(key)
        if event is None:
            continue
        before = {v.listener_id: v for v in queue.listeners()}
        out = queue.handle(event, now)
        for command in out:
            if isinstance(command, StartTimer):
                timers[command.key] = now + command.delay
            elif isinstance(command, OfferCall):
                view = before.get(command.listener_id)
                if view is None:
                    # Unknown before: only coming on duty can make them offerable.
                    assert isinstance(event, ListenerOnline), event
                    assert event.listener_id == command.listener_id
                    continue
                frees_them = (
                    isinstance(event, ListenerOnline) and event.listener_id == view.listener_id
                ) or (isinstance(event, TimerFired) and event.key.listener_id == view.listener_id)
                reached = (
                    isinstance(event, PhoneReachability | ListenerOnline)
                    and event.listener_id == view.listener_id
                )
                if not frees_them:
                    assert view.state not in BLOCKED, (event, view)
                    assert view.shift_calls < 2, (event, view)
                if not reached:
                    assert view.reachable, (event, view)


def test_a_call_resumed_after_a_restart_does_not_start_a_shift_at_the_epoch() -> None:
    queue = CallQueue(POLICY)
    queue.handle(CallResumed("c1", "main", "ana", "PJSIP/ana", arrived_at=9000.0, answered_at=9010.0), 9100.0)
    out = queue.handle(online("ana", on_duty_since=8000.0, shift_calls=0), 9101.0)
    assert StartTimer(TimerKey("shift", None, "ana"), 8000.0 + 3600.0 - 9101.0) in out
    out = queue.handle(ListenerLeft("c1", "ana"), 9200.0)
    assert states(out)[-1].reason == "after_call"
    out = queue.handle(TimerFired(TimerKey("rest", "c1", "ana")), 9230.0)
    assert states(out)[-1].state is ListenerState.AVAILABLE


def test_a_supervisor_on_duty_but_paused_for_callers_can_still_be_asked_in() -> None:
    queue = CallQueue(POLICY)
    queue.handle(online("ana"), 0.0)
    queue.handle(online("sup", SUPERVISOR), 0.5)
    queue.handle(ListenerPaused("sup", "supervising"), 0.6)
    queue.handle(CallerArrived("c1", "main"), 1.0)
    assert queue.listener_state("sup") is ListenerState.PAUSED
    queue.handle(OfferAnswered("c1", "ana"), 2.0)
    assert offers(queue.handle(CallerArrived("c2", "main"), 3.0)) == []  # no caller for the paused supervisor
    assert offers(queue.handle(HelpRequested("c1", "ana", "supervisor"), 4.0)) == [("c1", "sup")]
    queue.handle(OfferAnswered("c1", "sup"), 5.0)
    queue.handle(ListenerLeft("c1", "sup"), 60.0)
    out = queue.handle(TimerFired(TimerKey("rest", "c1", "sup")), 90.0)
    # Back to their pause, not to callers.
    assert [(s.state, s.reason) for s in states(out)] == [(ListenerState.PAUSED, "supervising")]


def test_an_available_listener_whose_phone_comes_and_goes_is_said_so() -> None:
    """Available means offerable: the roster is told when the phone unregisters (available, reason
    phone_unreachable) and when it registers again (available, no reason), and nothing when nothing changed."""
    queue = CallQueue(POLICY)
    came = queue.handle(online("ana", reachable=False), 0.0)
    assert SetListenerState("ana", ListenerState.AVAILABLE, None, None, "phone_unreachable") in came
    assert queue.handle(PhoneReachability("ana", False), 1.0) == []
    assert queue.handle(PhoneReachability("ana", True), 2.0) == [
        SetListenerState("ana", ListenerState.AVAILABLE, None, None, None)
    ]
    assert queue.handle(PhoneReachability("ana", False), 3.0) == [
        SetListenerState("ana", ListenerState.AVAILABLE, None, None, "phone_unreachable")
    ]


def test_a_call_resumed_after_a_restart_leaves_a_signed_out_listener_off_duty_after_it() -> None:
    """The service restarts during a call of a listener who had signed out (found by the every-event state
    machine): the call goes on, and once it and the rest are over they are off duty, offered nothing."""
    queue = CallQueue(POLICY)
    queue.handle(online("ana"), 0.0)
    queue.handle(ListenerOffline("ana"), 1.0)
    queue.handle(CallResumed("c1", "main", "ana", "PJSIP/ana", arrived_at=2.0, answered_at=3.0), 4.0)
    assert state_of(queue, "ana") is ListenerState.ON_CALL
    queue.handle(CallerArrived("c2", "main"), 5.0)
    queue.handle(ListenerLeft("c1", "ana"), 10.0)
    out = queue.handle(TimerFired(TimerKey("rest", "c1", "ana")), 40.0)
    assert offers(out) == []
    assert state_of(queue, "ana") is ListenerState.OFFLINE
