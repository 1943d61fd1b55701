"""Hypothesis drives the call queue through random histories against a model of the outside world.

The model plays Asterisk, the roster and the timer wheel: it applies every command the queue
returns, refuses impossible ones (a second call on one phone, an offer to a resting listener) and
reports plausible events back, mixed with duplicates, replays and events about unknown ids.
The protections and help within a call are driven too, by test_every_event_properties.py.
"""

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

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
LISTENERS = ("l0", "l1", "l2", "l3")
REST_REASONS = {
    "after_call": POLICY.rest_after_call,
    "missed_offer": POLICY.missed_offer_delay,
    "declined_offer": POLICY.declined_offer_delay,
}
RINGING, TALKING = "ringing", "talking"

failures: st.SearchStrategy[OfferFailure] = st.sampled_from(["busy", "no_answer", "unreachable"])


class CallQueueMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.queue = CallQueue(POLICY)
        self.now = 1_000.0
        self.steps = 0
        self.drain_after = 0
        self.draining = False
        self.arrivals: list[str] = []
        # Callers still in the service, with the listener they are bridged to.
        self.present: dict[str, str | None] = {}
        # What each listener's phone is doing for this service: (RINGING | TALKING, call id).
        self.phones: dict[str, tuple[str, str]] = {}
        # The roster rows as the executor last wrote them.
        self.roster: dict[str, ListenerState] = {}
        self.online: dict[str, bool] = {}
        self.endpoints: dict[str, str] = {}
        # Running timers and when they are due.
        self.timers: dict[TimerKey, float] = {}
        # When each listener's rest after a call or a missed offer ends.
        self.rests_until: dict[str, float] = {}
        self.records: dict[str, CallRecord] = {}
        self.connected_ever: set[str] = set()
        self.history: list[Event] = []
        # Set while a step runs, so teardown does not mask the assertion that stopped it.
        self.broken = False

    # -- the outside world reporting events -------------------------------------------------

    @initialize(drain_after=st.integers(10, 80))
    def choose_when_to_drain(self, drain_after: int) -> None:
        self.drain_after = drain_after

    @rule(line=st.sampled_from(["main", "youth"]))
    def caller_arrives(self, line: str) -> None:
        self.send(CallerArrived(f"c{len(self.arrivals)}", line))

    @precondition(lambda self: bool(self.present))
    @rule(data=st.data())
    def caller_hangs_up(self, data: st.DataObject) -> None:
        self.send(CallerLeft(data.draw(st.sampled_from(sorted(self.present)))))

    @initialize(signed_in=st.lists(st.sampled_from(LISTENERS), unique=True, max_size=3))
    def listeners_start_their_shift(self, signed_in: list[str]) -> None:
        for listener_id in signed_in:
            self.send(ListenerOnline(listener_id, f"PJSIP/{listener_id}", None))

    @rule(
        listener_id=st.sampled_from(LISTENERS),
        signs_in=st.booleans(),
        desk=st.booleans(),
        idle_since=st.none() | st.integers(0, 2_000).map(float),
    )
    def listener_signs_in_or_out(
        self, listener_id: str, signs_in: bool, desk: bool, idle_since: float | None
    ) -> None:
        if signs_in:
            endpoint = f"PJSIP/{listener_id}{'-desk' if desk else ''}"
            self.send(ListenerOnline(listener_id, endpoint, idle_since))
        else:
            self.send(ListenerOffline(listener_id))

    @precondition(lambda self: any(kind == RINGING for kind, _ in self.phones.values()))
    @rule(data=st.data(), outcome=st.sampled_from(["answer", "answer", "fail", "claim"]), reason=failures)
    def ringing_phone_reacts(self, data: st.DataObject, outcome: str, reason: OfferFailure) -> None:
        ringing = sorted((lid, cid) for lid, (kind, cid) in self.phones.items() if kind == RINGING)
        listener_id, call_id = data.draw(st.sampled_from(ringing))
        if outcome == "answer":
            self.send(OfferAnswered(call_id, listener_id))
        elif outcome == "claim":
            self.send(ClaimFailed(call_id, listener_id))
        else:
            self.send(OfferFailed(call_id, listener_id, reason))

    @precondition(lambda self: any(kind == TALKING for kind, _ in self.phones.values()))
    @rule(data=st.data())
    def listener_hangs_up(self, data: st.DataObject) -> None:
        talking = sorted((lid, cid) for lid, (kind, cid) in self.phones.items() if kind == TALKING)
        listener_id, call_id = data.draw(st.sampled_from(talking))
        self.send(ListenerLeft(call_id, listener_id))

    @precondition(lambda self: bool(self.timers))
    @rule(data=st.data())
    def a_timer_fires(self, data: st.DataObject) -> None:
        self.send(TimerFired(data.draw(st.sampled_from(sorted(self.timers, key=repr)))))

    @rule(seconds=st.sampled_from([0.0, 0.5, 5.0, 12.0, 40.0]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds

    @precondition(lambda self: not self.draining and self.steps >= self.drain_after)
    @rule()
    def service_drains(self) -> None:
        self.send(DrainRequested())

    @rule(data=st.data(), replay=st.booleans(), reason=failures)
    def a_duplicate_late_or_unknown_event(
        self, data: st.DataObject, replay: bool, reason: OfferFailure
    ) -> None:
        if replay and self.history:
            self.send(data.draw(st.sampled_from(self.history)))
            return
        call_id = data.draw(st.sampled_from([*self.arrivals, "ghost"]))
        listener_id = data.draw(st.sampled_from([*LISTENERS, "nobody"]))
        candidates: list[Event] = [
            CallerLeft(call_id),
            ClaimFailed(call_id, listener_id),
            OfferAnswered(call_id, listener_id),
            OfferFailed(call_id, listener_id, reason),
            ListenerLeft(call_id, listener_id),
            TimerFired(TimerKey("ring", call_id, listener_id)),
            TimerFired(TimerKey("rest", call_id, listener_id)),
            TimerFired(TimerKey("rest", None, listener_id)),
        ]
        self.send(data.draw(st.sampled_from(candidates)))

    def teardown(self) -> None:
        if self.broken:
            return
        for call_id in sorted(self.present):
            self.send(CallerLeft(call_id))
        assert self.queue.idle
        assert sorted(self.records) == sorted(self.arrivals), "every caller gets one record"

    # -- one step ---------------------------------------------------------------------------

    def send(self, event: Event) -> None:
        self.broken = True
        self.steps += 1
        self.world_sees(event)
        commands = self.queue.handle(event, self.now)
        for command in commands:
            self.apply(command)
        self.check_offers_were_fair(commands)
        self.check_state()
        self.history.append(event)
        self.broken = False

    def world_sees(self, event: Event) -> None:
        match event:
            case CallerArrived(call_id=call_id) if call_id not in self.arrivals:
                self.arrivals.append(call_id)
                self.present[call_id] = None
            case CallerLeft(call_id=call_id):
                bridged_to = self.present.pop(call_id, None)
                if bridged_to is not None:
                    self.rests_until[bridged_to] = self.now + POLICY.rest_after_call
            case ListenerOnline(listener_id=listener_id, endpoint=endpoint):
                self.online[listener_id] = True
                self.endpoints[listener_id] = endpoint
            case ListenerOffline(listener_id=listener_id) if listener_id in self.online:
                self.online[listener_id] = False
            case ClaimFailed(call_id=call_id, listener_id=listener_id):
                if self.phones.get(listener_id) == (RINGING, call_id):
                    del self.phones[listener_id]
                    # Another instance holds the row: for this one the listener is unavailable.
                    self.roster[listener_id] = ListenerState.OFFLINE
            case OfferFailed(call_id=call_id, listener_id=listener_id, reason=reason):
                if self.phones.get(listener_id) == (RINGING, call_id):
                    del self.phones[listener_id]
                    delay = POLICY.declined_offer_delay if reason == "busy" else POLICY.missed_offer_delay
                    self.rests_until[listener_id] = self.now + delay
            case ListenerLeft(call_id=call_id, listener_id=listener_id):
                if self.phones.get(listener_id) == (TALKING, call_id):
                    del self.phones[listener_id]
                    self.rests_until[listener_id] = self.now + POLICY.rest_after_call
            case TimerFired(key=key) if key in self.timers:
                # A running timer cannot fire early; firing a later one first makes the earlier
                # ones late, as on a busy event loop.
                self.now = max(self.now, self.timers.pop(key))
                if key.kind == "ring":
                    self.rests_until[key.listener_id] = self.now + POLICY.missed_offer_delay
            case DrainRequested():
                self.draining = True

    def apply(self, command: Command) -> None:
        match command:
            case StartTimer(key=key, delay=delay):
                assert key not in self.timers, f"timer {key} started twice"
                expected = {POLICY.ring_timeout} if key.kind == "ring" else set(REST_REASONS.values())
                assert delay in expected
                self.timers[key] = self.now + delay
            case CancelTimer(key=key):
                assert key in self.timers, f"cancelled {key}, which is not running"
                del self.timers[key]
            case OfferCall(call_id=cid, listener_id=lid, endpoint=endpoint, ring_timeout=timeout):
                assert not self.draining, "offer while draining"
                assert lid not in self.phones, f"{lid} offered {cid} while busy with {self.phones[lid]}"
                assert self.present.get(cid, "gone") is None, f"{cid} is gone or bridged"
                assert all(c != cid for _, c in self.phones.values()), f"{cid} offered twice"
                assert self.roster.get(lid) is ListenerState.AVAILABLE, f"{lid} is {self.roster.get(lid)}"
                assert self.online[lid], f"{lid} is offline"
                assert self.now >= self.rests_until.get(lid, self.now), f"{lid} offered while resting"
                assert endpoint == self.endpoints[lid]
                assert timeout == POLICY.ring_timeout
                assert TimerKey("ring", cid, lid) in self.timers, "a phone rings with no deadline"
                self.phones[lid] = (RINGING, cid)
                self.roster[lid] = ListenerState.RINGING
            case CancelOffer(call_id=cid, listener_id=lid):
                assert self.phones.get(lid) == (RINGING, cid)
                del self.phones[lid]
            case ConnectCall(call_id=cid, listener_id=lid):
                assert self.phones.get(lid) == (RINGING, cid)
                assert cid in self.present, f"{cid} bridged after hanging up"
                assert cid not in self.connected_ever, f"{cid} connected twice"
                self.connected_ever.add(cid)
                self.phones[lid] = (TALKING, cid)
                self.present[cid] = lid
            case EndCall(call_id=cid, listener_id=lid):
                assert cid not in self.records
                if lid is not None and self.phones.get(lid) == (TALKING, cid):
                    del self.phones[lid]
                assert all(c != cid for _, c in self.phones.values()), f"{cid} left a phone up"
                self.present.pop(cid, None)
            case SendToFallback(call_id=cid):
                assert self.draining
                assert self.present.get(cid, "gone") is None, f"{cid} is gone or bridged"
                assert all(c != cid for _, c in self.phones.values())
                del self.present[cid]
            case SetListenerState(listener_id=lid, state=state, until=until, reason=reason):
                if state is ListenerState.RESTING:
                    assert reason in REST_REASONS
                    assert until == self.now + REST_REASONS[reason]
                else:
                    assert until is None
                if state is ListenerState.AVAILABLE:
                    assert self.online[lid], f"{lid} made available while signed out"
                self.roster[lid] = state
            case RecordCall(record=record):
                self.check_record(record)
                self.records[record.call_id] = record

    # -- what must hold -----------------------------------------------------------------------

    def check_record(self, record: CallRecord) -> None:
        assert record.call_id in self.arrivals
        assert record.call_id not in self.records, f"{record.call_id} recorded twice"
        assert record.call_id not in self.present, "recorded while still in the service"
        assert record.ended_at == self.now
        served = record.call_id in self.connected_ever
        assert (record.outcome == "served") is served
        assert (record.answered_at is not None) is served
        assert (record.listener_id is not None) is served
        end_of_wait = record.answered_at if record.answered_at is not None else record.ended_at
        assert record.wait_seconds == end_of_wait - record.queued_at >= 0
        talk = record.ended_at - record.answered_at if record.answered_at is not None else 0.0
        assert record.talk_seconds == talk
        assert (record.offers == 0) is (record.first_offered_at is None)

    def check_offers_were_fair(self, commands: list[Command]) -> None:
        """Dispatch only ever takes from the waiting callers and the available listeners,
        so whoever it picks must come before everyone still waiting or available afterwards."""
        rank = {call_id: n for n, call_id in enumerate(self.arrivals)}
        views = {v.listener_id: v for v in self.queue.listeners()}
        still_waiting = [rank[v.call_id] for v in self.queue.calls() if v.state is CallState.WAITING]
        still_free = [
            (v.idle_since, v.listener_id) for v in views.values() if v.state is ListenerState.AVAILABLE
        ]
        offered = [c for c in commands if isinstance(c, OfferCall)]
        picked_calls = [rank[o.call_id] for o in offered]
        picked_listeners = [(views[o.listener_id].idle_since, o.listener_id) for o in offered]
        assert picked_calls == sorted(picked_calls), "offers out of arrival order"
        assert picked_listeners == sorted(picked_listeners), "a less idle listener went first"
        assert all(c < w for c in picked_calls for w in still_waiting), "FIFO broken"
        assert all(p < f for p in picked_listeners for f in still_free), "not the longest idle"

    def check_state(self) -> None:
        calls = self.queue.calls()
        in_progress = [v.call_id for v in calls]
        assert in_progress == [c for c in self.arrivals if c in set(in_progress)], "queue order"
        assert set(in_progress).isdisjoint(self.records)
        assert set(in_progress) | set(self.records) == set(self.arrivals), "a caller was lost"
        assert self.queue.waiting() == tuple(v.call_id for v in calls if v.state is not CallState.CONNECTED)
        assert self.queue.idle is (not calls)
        assert self.queue.draining is self.draining

        expected_phones: dict[str, tuple[str, str]] = {}
        live_timers: set[TimerKey] = set()
        for view in calls:
            if view.state is CallState.WAITING:
                assert view.listener_id is None
                assert not self.draining, f"{view.call_id} waits during a drain"
            elif view.state is CallState.RINGING:
                assert view.listener_id is not None
                assert not self.draining, f"{view.call_id} rings during a drain"
                expected_phones[view.listener_id] = (RINGING, view.call_id)
                live_timers.add(TimerKey("ring", view.call_id, view.listener_id))
            else:
                assert view.listener_id is not None
                assert self.present.get(view.call_id) == view.listener_id
                expected_phones[view.listener_id] = (TALKING, view.call_id)
        assert self.phones == expected_phones, "the queue and the phones disagree"
        assert {k for k in self.timers if k.kind == "ring"} == live_timers, "stray ring timer"

        listeners = self.queue.listeners()
        assert {v.listener_id for v in listeners} == set(self.online)
        for listener in listeners:
            lid, state = listener.listener_id, listener.state
            assert state is self.roster[lid], f"roster says {self.roster[lid]}, queue {listener}"
            rests = [k for k in self.timers if k.kind == "rest" and k.listener_id == lid]
            assert len(rests) == (state is ListenerState.RESTING), f"{lid} rest timers {rests}"
            if state is ListenerState.AVAILABLE:
                assert self.online[lid]
            phone = self.phones.get(lid)
            assert (phone is not None and phone[0] == RINGING) is (state is ListenerState.RINGING)
            assert (phone is not None and phone[0] == TALKING) is (state is ListenerState.ON_CALL)
        assert len({k.listener_id for k in self.timers if k.kind == "rest"}) == len(
            [k for k in self.timers if k.kind == "rest"]
        )

        someone_waits = any(v.state is CallState.WAITING for v in calls)
        someone_free = any(v.state is ListenerState.AVAILABLE for v in listeners)
        assert not (someone_waits and someone_free), "a caller waits while a listener is free"


CallQueueMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
TestCallQueue = CallQueueMachine.TestCase
