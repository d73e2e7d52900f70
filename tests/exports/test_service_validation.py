"""The export form: every field checked on save, against the rules, the profile table and
the platform (the sandbox, over HTTP). Saving never runs the export."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from segmentsync.auth.models import AuditEntry
from segmentsync.connections.models import ConnectionType
from segmentsync.errors import ConfigError, Conflict, Invalid, NotFound, SegmentSyncError
from segmentsync.exports import checks
from segmentsync.exports.models import Export, ExportSegment, Run

from .world import World, cm_field

CM, CC = ConnectionType.CAMPAIGN_MONITOR, ConnectionType.CONSTANT_CONTACT


@pytest.mark.parametrize(
    ("list_id", "type"),
    [
        ("0123456789abcdef0123456789abcdef", CM),
        (" 0123456789ABCDEF0123456789ABCDEF ", CM),
        ("1c2d3e4f-0000-4000-8000-0123456789ab", CC),
        ("1C2D3E4F-0000-4000-8000-0123456789AB", CC),
        ("0123456789abcdef0123456789abcde", None),  # 31 characters
        ("0123456789abcdef0123456789abcdeg", None),
        ("1c2d3e4f00004000800001234567 89ab", None),
        ("", None),
        ("{1c2d3e4f-0000-4000-8000-0123456789ab}", None),  # braces: not how Constant Contact writes them
    ],
)
def test_the_platform_of_a_list_id_is_told_by_its_format(list_id: str, type: ConnectionType | None) -> None:
    assert checks.list_type(list_id) is type


@pytest.mark.parametrize(
    ("type", "target", "stored"),
    [
        (CM, "Name", "Name"),
        (CM, "name", "Name"),
        (CM, "City", "[City]"),
        (CM, "[City]", "[City]"),
        (CM, " [Favourite colour] ", "[Favourite colour]"),
        (CM, "[a]b]", None),
        (CM, "[]", None),
        (CC, "first_name", "first_name"),
        (CC, "Last_Name", "last_name"),
        (CC, "cf:colour", "cf:colour"),
        (CC, "CF: colour", "cf:colour"),
        (CC, "cf:", None),
        (CC, "city", None),
        (CC, "Name", None),
    ],
)
def test_attribute_targets_per_platform(type: ConnectionType, target: str, stored: str | None) -> None:
    if stored is None:
        with pytest.raises(Invalid) as caught:
            checks._target(target.strip(), type)
        assert caught.value.field == "attributes"
    else:
        assert checks._target(target.strip(), type) == stored


def test_a_saved_export_has_the_list_name_fields_and_member_count_and_never_runs(world: World) -> None:
    cm_field(world.sandbox, world.cm.credentials, world.cm.list_id, "City")
    saved = world.create(
        world.form(
            attributes=[{"column": "first_name", "target": "name"}, {"column": "city", "target": "city"}],
            consent_to_track="column",
            consent_column="consent",
            segment_ids=[world.segments["PL"], world.segments["LV"], world.segments["PL"]],
        )
    )
    assert saved.members == 20
    assert saved.warnings == []
    with world.runtime.sessions() as session:
        export = session.get(Export, saved.export_id)
        assert export is not None
        assert export.list_name == "CM Shared list"
        assert export.attributes == [
            {"column": "first_name", "target": "Name"},
            {"column": "city", "target": "[City]"},
        ]
        assert (export.consent_to_track, export.consent_column) == ("column", "consent")
        segments = session.scalars(
            sa.select(ExportSegment.segment_id).where(ExportSegment.export_id == export.id)
        )
        assert sorted(segments) == sorted([world.segments["PL"], world.segments["LV"]])
        assert session.scalar(sa.select(sa.func.count()).select_from(Run)) == 0  # saving never runs it
        entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "export.create"))
        assert entry is not None
        assert entry.actor_label == "ada@example.com"
        assert entry.after is not None
        assert entry.after["list_id"] == world.cm.list_id


def cm_fields(world: World) -> dict[str, str]:
    client = world.cm.credentials
    answer = httpx.get(
        f"{world.sandbox.campaign_monitor_api}/lists/{world.cm.list_id}/customfields.json",
        auth=(client["ApiKey"], "x"),
        timeout=10,
    )
    answer.raise_for_status()
    return {item["Key"]: item["DataType"] for item in answer.json()}


def test_missing_campaign_monitor_fields_are_created_only_when_asked(world: World) -> None:
    form = world.form(attributes=[{"column": "age", "target": "[Age]"}, {"column": "city", "target": "City"}])
    with pytest.raises(Invalid, match="no custom field 'Age'") as caught:
        world.create(form)
    assert caught.value.field == "attributes"
    assert cm_fields(world) == {}
    saved = world.create(form.model_copy(update={"create_missing_fields": True}))
    assert cm_fields(world) == {"[Age]": "Number", "[City]": "Text"}  # typed after the profile columns
    assert any("[Age]" in warning for warning in saved.warnings)


def test_constant_contact_names_and_existing_custom_fields(world: World) -> None:
    account = world.cc.credentials
    httpx.post(
        f"{world.sandbox.constant_contact_api}/contact_custom_fields",
        json={"label": "Home City", "type": "string"},
        headers={"Authorization": f"Bearer {account['access_token']}"},
        timeout=10,
    ).raise_for_status()
    attributes = [
        {"column": "first_name", "target": "first_name"},
        {"column": "last_name", "target": "last_name"},
        {"column": "city", "target": "cf:Home City"},
    ]
    saved = world.create(world.cc_form(attributes=attributes))
    with world.runtime.sessions() as session:
        export = session.get(Export, saved.export_id)
        assert export is not None
        assert export.list_name == "CC list"
        assert export.attributes[2]["target"].startswith("cf:")
        assert export.consent_to_track == "Unchanged"
    with pytest.raises(Invalid, match="no custom field 'colour'"):
        world.create(world.cc_form(name="Other", attributes=[{"column": "city", "target": "cf:colour"}]))


def test_every_field_is_checked_with_a_message_for_that_field(world: World) -> None:
    world.create(world.form(name="Taken"))
    unknown_list = "0" * 32
    cases: list[tuple[dict[str, Any], str, type[SegmentSyncError], str, str]] = [
        # (changes, platform, error, field, words in the message)
        ({"name": "   "}, "cm", Invalid, "name", "name"),
        ({"name": "Taken"}, "cm", Conflict, "name", "already exists"),
        ({"connection_id": 9999}, "cm", NotFound, "connection_id", "no connection"),
        ({"list_id": "123"}, "cm", Invalid, "list_id", "32 hexadecimal"),
        ({"list_id": world.cc.list_id}, "cm", Invalid, "list_id", "not a Campaign Monitor list ID"),
        ({"list_id": unknown_list}, "cm", ConfigError, "list_id", unknown_list),
        ({"list_id": world.cm.list_id}, "cc", Invalid, "list_id", "UUID"),
        ({"email_column": "mail"}, "cm", Invalid, "email_column", "not a column"),
        ({"email_column": "age"}, "cm", Invalid, "email_column", "not text"),
        ({"attributes": [{"column": "nope", "target": "Name"}]}, "cm", Invalid, "attributes", "not a column"),
        (
            {"attributes": [{"column": "first_name", "target": "Name"}, {"column": "first_name", "target": "name"}]},
            "cm", Invalid, "attributes", "twice",
        ),
        ({"attributes": [{"column": "city", "target": "city"}]}, "cc", Invalid, "attributes", "first_name"),
        ({"consent_to_track": "column"}, "cm", Invalid, "consent_column", "column"),
        ({"consent_to_track": "column", "consent_column": "x"}, "cm", Invalid, "consent_column", "not a column"),
        ({"consent_to_track": "Yes"}, "cc", Invalid, "consent_to_track", "Campaign Monitor"),
        ({"sync_mode": "mirror", "removal_mode": "unsubscribe"}, "cc", Invalid, "removal_mode", "list membership"),
        ({"create_missing_fields": True}, "cc", Invalid, "create_missing_fields", "Campaign Monitor"),
        ({"segment_ids": [9999]}, "cm", Invalid, "segment_ids", "9999"),
        ({"schedule_mode": "cron"}, "cm", Invalid, "cron", "cron"),
        ({"schedule_mode": "cron", "cron": "61 * * * *"}, "cm", Invalid, "cron", "five fields"),
        ({"schedule_mode": "cron", "cron": "0 6 * * * *"}, "cm", Invalid, "cron", "five fields"),
        ({"schedule_mode": "cron", "cron": "@reboot"}, "cm", Invalid, "cron", "macro"),
        ({"timezone": "Mars/Olympus"}, "cm", Invalid, "timezone", "unknown time zone"),
    ]  # fmt: skip
    for changes, platform, error, field, words in cases:
        form = world.form(**changes) if platform == "cm" else world.cc_form(**changes)
        with pytest.raises(error) as caught:
            world.create(form)
        assert caught.value.field == field, (changes, caught.value)
        assert words in caught.value.message, (changes, caught.value.message)
    with world.runtime.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Export)) == 1  # only "Taken"


def test_segments_over_the_limit_are_saved_with_a_warning(world: World) -> None:
    world.runtime.settings.export_limit = 15
    saved = world.create(world.form(segment_ids=[world.segments["PL"], world.segments["RO"]]))
    assert saved.members == 20
    assert len(saved.warnings) == 1
    assert "20 profiles, over the limit of 15" in saved.warnings[0]


def test_schedules_are_normalised(world: World) -> None:
    saved = world.create(
        world.form(schedule_mode="cron", cron="  0   6 * *   1-5 ", timezone="Europe/Warsaw")
    )
    with world.runtime.sessions() as session:
        export = session.get(Export, saved.export_id)
        assert export is not None
        assert (export.schedule_mode.value, export.cron, export.timezone) == (
            "cron",
            "0 6 * * 1-5",
            "Europe/Warsaw",
        )
