"""Listener administration: creation, lookup, edits, removal and validation."""

import dataclasses
import re
from datetime import UTC, datetime, timedelta

import pytest

from helpline_pbx.phones import sip_ha1
from helpline_pbx.roster.errors import (
    DuplicateListener,
    InvalidListener,
    ListenerNotFound,
    RosterError,
)
from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.snapshots import CallRecordData
from helpline_pbx.roster.states import ListenerState, Role

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


async def test_added_listener_gets_id_secret_and_starts_offline(roster: Roster) -> None:
    listener = await roster.add_listener("Swallow", "swallow", "volunteer", now=NOW)

    assert re.fullmatch(r"l-[0-9a-f]{8}", listener.id)
    assert listener.sip_password is not None
    assert re.fullmatch(r"[A-Za-z0-9_-]{24,}", listener.sip_password)
    assert listener.sip_password not in repr(listener)
    assert listener.sip_ha1 == sip_ha1("swallow", listener.sip_password)
    assert listener.sip_ha1 not in repr(listener)
    assert listener.role is Role.VOLUNTEER
    assert listener.state is ListenerState.OFFLINE
    assert listener.active is True
    assert listener.created_at == NOW
    assert listener.created_at.tzinfo is not None
    stored = await roster.get_listener(listener.id)
    assert stored == listener
    # Shown once: the roster keeps the digest Asterisk needs, never the password.
    assert stored.sip_password is None


async def test_secrets_and_ids_differ_between_listeners(roster: Roster) -> None:
    first = await roster.add_listener("Wren", "wren", Role.VOLUNTEER)
    second = await roster.add_listener("Robin", "robin", Role.VOLUNTEER)
    assert first.id != second.id
    assert first.sip_password != second.sip_password
    assert first.sip_ha1 != second.sip_ha1


async def test_lookup_by_id_endpoint_or_pseudonym(roster: Roster) -> None:
    listener = await roster.add_listener("Heron", "heron-7", Role.PROFESSIONAL)
    for ref in (listener.id, "heron-7", "Heron"):
        assert (await roster.get_listener(ref)).id == listener.id


async def test_id_wins_over_a_pseudonym_that_looks_like_it(roster: Roster) -> None:
    target = await roster.add_listener("Kite", "kite", Role.VOLUNTEER)
    await roster.add_listener(target.id, "decoy", Role.VOLUNTEER)
    assert (await roster.get_listener(target.id)).endpoint == "kite"


async def test_unknown_listener_raises_not_found(roster: Roster) -> None:
    with pytest.raises(ListenerNotFound) as caught:
        await roster.get_listener("nobody")
    assert caught.value.code == "listener_not_found"
    with pytest.raises(ListenerNotFound):
        await roster.edit_listener("nobody", active=False)
    with pytest.raises(ListenerNotFound):
        await roster.remove_listener("nobody")
    with pytest.raises(ListenerNotFound):
        await roster.set_state("l-00000000", ListenerState.AVAILABLE, now=NOW)


@pytest.mark.parametrize(
    ("pseudonym", "endpoint"),
    [("Owl", "other-owl"), ("Other owl", "owl")],
    ids=["same-pseudonym", "same-endpoint"],
)
async def test_duplicates_are_refused(roster: Roster, pseudonym: str, endpoint: str) -> None:
    await roster.add_listener("Owl", "owl", Role.VOLUNTEER)
    with pytest.raises(DuplicateListener) as caught:
        await roster.add_listener(pseudonym, endpoint, Role.VOLUNTEER)
    assert caught.value.code == "listener_duplicate"
    assert "already used" in str(caught.value)
    assert len(await roster.list_listeners()) == 1


@pytest.mark.parametrize(
    ("pseudonym", "endpoint", "role", "complaint"),
    [
        ("Lark", "Lark", "volunteer", "endpoint"),
        ("Lark", "lark bird", "volunteer", "endpoint"),
        ("Lark", "", "volunteer", "endpoint"),
        ("Lark", "l" * 65, "volunteer", "endpoint"),
        ("Lark", "lark;drop", "volunteer", "endpoint"),
        ("Lark", "lark", "boss", "role"),
        ("   ", "lark", "volunteer", "pseudonym"),
        ("L" * 65, "lark", "volunteer", "pseudonym"),
        ("La\nrk", "lark", "volunteer", "pseudonym"),
    ],
)
async def test_invalid_listener_input_is_refused(
    roster: Roster, pseudonym: str, endpoint: str, role: str, complaint: str
) -> None:
    with pytest.raises(InvalidListener) as caught:
        await roster.add_listener(pseudonym, endpoint, role)
    assert caught.value.code == "listener_invalid"
    assert complaint in str(caught.value)
    assert await roster.list_listeners() == []


async def test_edit_changes_only_what_is_given(roster: Roster) -> None:
    listener = await roster.add_listener("Finch", "finch", Role.VOLUNTEER, now=NOW)
    later = NOW + timedelta(minutes=5)

    edited = await roster.edit_listener(
        "finch", pseudonym="Goldfinch", role="supervisor", endpoint="goldfinch", now=later
    )

    assert (edited.id, edited.pseudonym, edited.endpoint) == (listener.id, "Goldfinch", "goldfinch")
    assert edited.role is Role.SUPERVISOR
    # The digest is bound to the endpoint name: a new name comes with a new password, shown once.
    assert edited.sip_password is not None
    assert edited.sip_password != listener.sip_password
    assert edited.sip_ha1 == sip_ha1("goldfinch", edited.sip_password)
    assert edited.active is True
    assert edited.updated_at == later
    assert await roster.get_listener(listener.id) == edited


async def test_edit_regenerates_secret_and_deactivates(roster: Roster) -> None:
    listener = await roster.add_listener("Tern", "tern", Role.VOLUNTEER)
    edited = await roster.edit_listener(listener.id, regenerate_secret=True, active=False)
    assert edited.sip_password is not None
    assert edited.sip_password != listener.sip_password
    assert len(edited.sip_password) >= 24
    assert edited.sip_ha1 == sip_ha1("tern", edited.sip_password)
    assert edited.active is False
    assert [item.id for item in await roster.list_listeners(active_only=True)] == []
    assert [item.id for item in await roster.list_listeners()] == [listener.id]


async def test_edit_refuses_a_taken_endpoint_and_bad_values(roster: Roster) -> None:
    await roster.add_listener("Crow", "crow", Role.VOLUNTEER)
    raven = await roster.add_listener("Raven", "raven", Role.VOLUNTEER)
    with pytest.raises(DuplicateListener):
        await roster.edit_listener("raven", endpoint="crow")
    with pytest.raises(DuplicateListener):
        await roster.edit_listener("raven", pseudonym="Crow")
    with pytest.raises(InvalidListener):
        await roster.edit_listener("raven", role="admin")
    with pytest.raises(InvalidListener):
        await roster.edit_listener("raven", endpoint="RAVEN")
    assert await roster.get_listener("raven") == raven
    # Keeping one's own values is not a clash.
    assert (await roster.edit_listener("raven", endpoint="raven", pseudonym="Raven")).id == raven.id


async def test_remove_deletes_the_listener_but_records_keep_its_id(roster: Roster) -> None:
    listener = await roster.add_listener("Swift", "swift", Role.VOLUNTEER)
    record = CallRecordData(
        call_id="call-1",
        line="main",
        queued_at=NOW,
        ended_at=NOW + timedelta(minutes=9),
        outcome="served",
        instance="pbx-a",
        listener_id=listener.id,
    )
    assert await roster.record_call(record)
    await roster.set_state(listener.id, ListenerState.AVAILABLE, now=NOW)

    removed = await roster.remove_listener("Swift")

    assert removed.id == listener.id
    with pytest.raises(ListenerNotFound):
        await roster.get_listener(listener.id)
    assert await roster.call_record("call-1") == record
    assert [event.listener_id for event in await roster.listener_events()] == [listener.id]


async def test_roster_version_tracks_profile_changes_not_state(roster: Roster) -> None:
    empty = await roster.roster_version()
    assert empty.count == 0

    listener = await roster.add_listener("Gull", "gull", Role.VOLUNTEER, now=NOW)
    added = await roster.roster_version()
    assert added != empty

    await roster.set_state(listener.id, ListenerState.AVAILABLE, now=NOW + timedelta(minutes=1))
    assert await roster.roster_version() == added

    await roster.edit_listener("gull", regenerate_secret=True, now=NOW + timedelta(minutes=2))
    edited = await roster.roster_version()
    assert edited != added

    await roster.remove_listener("gull")
    assert await roster.roster_version() not in (edited, added)


async def test_snapshots_are_frozen(roster: Roster) -> None:
    listener = await roster.add_listener("Dove", "dove", Role.VOLUNTEER)
    with pytest.raises(dataclasses.FrozenInstanceError):
        listener.active = False  # type: ignore[misc]


def test_every_error_has_its_own_stable_code() -> None:
    errors: list[type[RosterError]] = [RosterError, *RosterError.__subclasses__()]
    codes = [cls.code for cls in errors]
    assert len(errors) >= 5
    assert len(set(codes)) == len(codes)
    assert all(re.fullmatch(r"[a-z_]+", code) for code in codes)


async def test_available_since_is_when_the_listener_became_available(roster: Roster) -> None:
    """The same state written again (a service restarting or reconnecting) keeps its start; a real change
    (the phone unregistered, then registered again) moves it."""
    listener = await roster.add_listener("Wren", "wren", "volunteer", now=NOW)
    await roster.set_state(listener.id, ListenerState.AVAILABLE, now=NOW)
    later = NOW + timedelta(hours=2)
    again = await roster.set_state(listener.id, ListenerState.AVAILABLE, now=later)
    assert again.state_changed_at == NOW
    gone = await roster.set_state(listener.id, ListenerState.AVAILABLE, reason="phone_unreachable", now=later)
    assert gone.state_changed_at == later
    back = await roster.set_state(listener.id, ListenerState.AVAILABLE, now=later + timedelta(minutes=5))
    assert back.state_changed_at == later + timedelta(minutes=5)
