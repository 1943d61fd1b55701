"""The indexed dispatch (core/index.py, Calls.dispatch, HelpDesk.dispatch) decides exactly what the plain
rules decide (reference.py), event after event: both state machines of the core are run again with the two
queues side by side, and every command list must be the same."""

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.core import test_call_queue_properties as calls_machine
from tests.unit.core import test_every_event_properties as every_event
from tests.unit.core.reference import Twins

from helpline_pbx.core import (
    CallerArrived,
    CallerLeft,
    CallResumed,
    ConnectFailed,
    HelpRequested,
    ListenerLeft,
    ListenerOffline,
    ListenerOnline,
    ListenerPaused,
    ListenerUpdated,
    OfferAnswered,
    OfferFailed,
    PhoneReachability,
    Policy,
    TimerFired,
)
from helpline_pbx.core.commands import ListenerState, OfferCall, StartTimer
from helpline_pbx.core.routing import Profile, Requirements, escalated, volunteers_first


class EveryEventTwins(every_event.EveryEventMachine):
    def __init__(self) -> None:
        super().__init__()
        self.queue = Twins(every_event.POLICY)  # type: ignore[assignment]


class CallQueueTwins(calls_machine.CallQueueMachine):
    def __init__(self) -> None:
        super().__init__()
        self.queue = Twins(calls_machine.POLICY)  # type: ignore[assignment]


EveryEventTwins.TestCase.settings = settings(max_examples=300, stateful_step_count=80, deadline=None)
CallQueueTwins.TestCase.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
TestEveryEventTwins = EveryEventTwins.TestCase
TestCallQueueTwins = CallQueueTwins.TestCase


# A floor richer than the two machines': callers asking for skills, languages and urgent help, reaches
# widening with time, practice calls, callers re-adopted with their own arrival times (out of queue order),
# listeners of every profile coming and going, and time passing. Ids come from small pools, so many events
# are stale: both queues must ignore them alike.
_LISTENERS = [f"l{i}" for i in range(8)]
_CALLS = [f"c{i}" for i in range(12)]
_PROFILES = st.builds(
    Profile,
    role=st.sampled_from(["volunteer", "professional", "supervisor"]),
    skills=st.frozensets(st.sampled_from(["legal", "youth"]), max_size=2),
    languages=st.sampled_from([frozenset({"fr"}), frozenset({"fr", "en"}), frozenset({"en"})]),
    trainee=st.sampled_from([False, False, False, True]),
)
_PLAIN = Requirements()
_REQUIREMENTS = st.sampled_from(
    [
        _PLAIN,
        Requirements(reach=volunteers_first(5.0)),
        Requirements(language="en", reach=volunteers_first(12.0)),
        Requirements(wanted=frozenset({"legal"})),
        Requirements(skills=frozenset({"youth"}), wanted=frozenset({"legal"})),
        escalated(Requirements(), professionals_alone_for=5.0),
        Requirements(practice=True),
        Requirements(practice=True, only_listener="l1"),
        Requirements(trainees_allowed=True, priority=3),
    ]
)


@given(data=st.data())
@settings(max_examples=400, deadline=None)
def test_a_rich_floor_is_dispatched_as_the_plain_rules_say(data: st.DataObject) -> None:
    twins = Twins(Policy(shift_limits={}, ring_timeout=10.0))
    now = 1000.0
    offers: dict[tuple[str, str], OfferCall] = {}
    timers: list[object] = []
    for _ in range(data.draw(st.integers(10, 90))):
        lid = data.draw(st.sampled_from(_LISTENERS))
        cid = data.draw(st.sampled_from(_CALLS))
        action = data.draw(st.integers(0, 14))
        if action == 0:
            event: object = ListenerOnline(
                lid,
                f"PJSIP/{lid}",
                profile=data.draw(_PROFILES),
                reachable=data.draw(st.booleans()),
                idle_since=data.draw(st.none() | st.floats(900, 1000)),
            )
        elif action == 1:
            event = CallerArrived(
                cid,
                "main",
                arrived_at=data.draw(st.none() | st.floats(now - 30, now)),
                requirements=data.draw(_REQUIREMENTS),
            )
        elif action == 2:
            event = CallerLeft(cid)
        elif action == 3 and offers:
            call_id, listener_id = data.draw(st.sampled_from(sorted(offers)))
            event = OfferAnswered(call_id, listener_id)
        elif action == 4 and offers:
            call_id, listener_id = data.draw(st.sampled_from(sorted(offers)))
            event = OfferFailed(call_id, listener_id, data.draw(st.sampled_from(["busy", "no_answer"])))
        elif action == 5 and timers:
            event = TimerFired(data.draw(st.sampled_from(timers)))  # type: ignore[arg-type]
        elif action == 6:
            event = ListenerPaused(lid, data.draw(st.sampled_from(["personal", "training"])))
        elif action == 7:
            event = ListenerOffline(lid)
        elif action == 8:
            event = PhoneReachability(lid, data.draw(st.booleans()))
        elif action == 9:
            event = ListenerUpdated(lid, f"PJSIP/{lid}", data.draw(_PROFILES))
        elif action == 10:
            event = HelpRequested(
                cid, lid, data.draw(st.sampled_from(["professional", "supervisor"])), data.draw(st.booleans())
            )
        elif action == 11:
            event = ListenerLeft(cid, lid)
        elif action == 12:
            event = ConnectFailed(cid, lid)
        elif action == 13:
            event = CallResumed(cid, "main", lid, f"PJSIP/{lid}", now - 20, now - 10)
        else:
            now += data.draw(st.sampled_from([0.5, 3.0, 5.0, 7.0, 12.0, 40.0]))
            continue
        for command in twins.handle(event, now):
            if isinstance(command, OfferCall):
                offers[(command.call_id, command.listener_id)] = command
            elif isinstance(command, StartTimer):
                timers.append(command.key)
        if isinstance(event, OfferAnswered | OfferFailed):
            offers.pop((event.call_id, event.listener_id), None)


def _offers(commands: list[object]) -> list[tuple[str, str]]:
    return [(c.call_id, c.listener_id) for c in commands if isinstance(c, OfferCall)]


def test_when_nobody_on_duty_holds_the_skill_asked_for_every_caller_who_asked_is_offered_at_once() -> None:
    """Two callers asked for "legal" while the only legal listener on duty was busy: when that listener
    leaves, the wish is dropped and both callers are offered to the two free listeners in the same
    decision (a bucket's callers are looked at one after the other, not just its first)."""
    twins = Twins(Policy(shift_limits={}))
    now = 1000.0
    legal = Requirements(wanted=frozenset({"legal"}))
    twins.handle(ListenerOnline("lawyer", "PJSIP/lawyer", profile=Profile(skills=frozenset({"legal"}))), now)
    twins.handle(CallerArrived("first", "main", requirements=_PLAIN), now)
    twins.handle(OfferAnswered("first", "lawyer"), now)
    for lid in ("ana", "bo"):
        twins.handle(ListenerOnline(lid, f"PJSIP/{lid}", idle_since=now), now)
    twins.handle(PhoneReachability("ana", False), now)
    twins.handle(PhoneReachability("bo", False), now)
    for cid in ("c1", "c2"):
        assert _offers(twins.handle(CallerArrived(cid, "main", requirements=legal), now)) == []
    twins.handle(PhoneReachability("ana", True), now)
    twins.handle(PhoneReachability("bo", True), now)
    # Waiting for the lawyer: nobody else is offered them while the lawyer is on duty.
    assert twins.indexed.listener_state("ana") is ListenerState.AVAILABLE
    decided = twins.handle(ListenerOffline("lawyer"), now + 1)
    assert sorted(_offers(decided)) == [("c1", "ana"), ("c2", "bo")]


def test_callers_readopted_out_of_arrival_order_are_each_reached_in_their_own_time() -> None:
    """After a restart callers come back with their own arrival times, not in that order: the one who
    has waited long enough for professionals is offered to one, although a caller ahead of them in the
    queue (who waited less) is not yet."""
    twins = Twins(Policy(shift_limits={}))
    now = 1000.0
    reach = Requirements(reach=volunteers_first(60.0))
    twins.handle(CallerArrived("recent", "main", arrived_at=now - 10, requirements=reach), now)
    twins.handle(CallerArrived("long", "main", arrived_at=now - 100, requirements=reach), now)
    decided = twins.handle(ListenerOnline("pro", "PJSIP/pro", profile=Profile(role="professional")), now)
    assert _offers(decided) == [("long", "pro")]
