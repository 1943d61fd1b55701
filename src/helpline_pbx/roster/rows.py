"""ORM rows to frozen snapshots and back: what leaves a session is always a snapshot."""

from datetime import datetime
from typing import Any

from helpline_pbx.roster.snapshots import CallRecordData, ListenerEventSnapshot, ListenerSnapshot
from helpline_pbx.roster.states import ListenerState, Presence, Role, outcome_of
from helpline_pbx.roster.tables import CallRecord, Listener, ListenerEvent
from helpline_pbx.roster.validators import aware, valid_call_id


def listener_snapshot(row: Listener, *, password: str | None = None) -> ListenerSnapshot:
    return ListenerSnapshot(
        id=row.id,
        pseudonym=row.pseudonym,
        endpoint=row.endpoint,
        sip_ha1=row.sip_ha1,
        sip_password=password,
        role=Role(row.role),
        active=row.active,
        state=ListenerState(row.state),
        state_call_id=row.state_call_id,
        state_until=row.state_until,
        state_reason=row.state_reason,
        idle_since=row.idle_since,
        state_changed_at=row.state_changed_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        skills=frozenset(row.skills or ()),
        languages=frozenset(row.languages or ("fr",)),
        presence=Presence(row.presence),
        presence_reason=row.presence_reason,
        code=row.code,
        trainee=row.trainee,
        monitoring_consent=row.monitoring_consent,
        shift_started_at=row.shift_started_at,
    )


def event_snapshot(row: ListenerEvent) -> ListenerEventSnapshot:
    return ListenerEventSnapshot(
        id=row.id,
        listener_id=row.listener_id,
        at=row.at,
        state=ListenerState(row.state),
        reason=row.reason,
        call_id=row.call_id,
    )


def call_record_values(record: CallRecordData) -> dict[str, Any]:
    outcome = outcome_of(record.outcome)
    valid_call_id(record.call_id)
    for name, text in (("line", record.line), ("instance", record.instance)):
        if not text or len(text) > 64:
            raise ValueError(f"a call record's {name} needs 1 to 64 characters")

    def optional(value: datetime | None) -> datetime | None:
        return None if value is None else aware(value)

    return {
        "call_id": record.call_id,
        "line": record.line,
        "queued_at": aware(record.queued_at),
        "first_offered_at": optional(record.first_offered_at),
        "answered_at": optional(record.answered_at),
        "ended_at": aware(record.ended_at),
        "outcome": outcome,
        "listener_id": record.listener_id,
        "offers": record.offers,
        "wait_seconds": record.wait_seconds,
        "talk_seconds": record.talk_seconds,
        "instance": record.instance,
        "practice": record.practice,
    }


def call_record_data(row: CallRecord) -> CallRecordData:
    return CallRecordData(
        call_id=row.call_id,
        line=row.line,
        queued_at=row.queued_at,
        ended_at=row.ended_at,
        outcome=outcome_of(row.outcome),
        instance=row.instance,
        first_offered_at=row.first_offered_at,
        answered_at=row.answered_at,
        listener_id=row.listener_id,
        offers=row.offers,
        wait_seconds=row.wait_seconds,
        talk_seconds=row.talk_seconds,
        practice=row.practice,
    )
