"""The official Constant Contact SDK works unchanged against the emulator (only its host is changed).

Lists, JSON import, activity status, custom fields with choices, and contacts created, updated
(unsubscribed) and resubscribed, as a client would use them. (The SDK cannot build a
remove_list_memberships request: it inherits the spec's ``maxItems: 0`` on those arrays.)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cc_api import CC
from constant_contact_api_client import (
    ApiClient,
    BulkActivitiesApi,
    Configuration,
    ContactListsApi,
    ContactsApi,
    ContactsCustomFieldsApi,
    CreateContactRequest,
    CreateContactRequestEmailAddress,
    CreateCustomFieldsRequest,
    CreateCustomFieldsRequestChoicesInner,
    CreateImportJSONActivityRequest,
    CreateImportJSONActivityRequestImportDataInner,
    GetCustomField200ResponseMetadata,
    ResubscribeContactRequest,
    UpdateContactRequest,
    UpdateContactRequestEmailAddress,
    UpdateListRequest,
)
from constant_contact_api_client.exceptions import ApiException, UnauthorizedException

from segmentsync.sandbox.launcher import Sandbox


@pytest.fixture
def cc(sandbox: Sandbox) -> Iterator[CC]:
    helper = CC(sandbox)
    yield helper
    helper.close()


@pytest.fixture
def client(cc: CC, sandbox: Sandbox) -> Iterator[ApiClient]:
    configuration = Configuration(host=sandbox.constant_contact_api, access_token=cc.access_token)
    with ApiClient(configuration) as api_client:
        yield api_client


def _rows(count: int) -> list[CreateImportJSONActivityRequestImportDataInner]:
    return [
        CreateImportJSONActivityRequestImportDataInner(
            email=f"sdk{n}@example.com", first_name="Sdk", last_name=str(n)
        )
        for n in range(count)
    ]


def test_lists_through_the_sdk(client: ApiClient) -> None:
    lists = ContactListsApi(client)
    created = lists.create_list(UpdateListRequest(name="SDK list", description="From the SDK", favorite=True))
    assert created.list_id
    assert created.name == "SDK list"
    assert created.favorite is True
    assert created.created_at is not None  # the timestamp parses as a datetime
    page = lists.get_all_lists(limit=10, include_count=True, include_membership_count="all")
    assert page.lists_count == 1
    assert [(lst.list_id, lst.membership_count) for lst in page.lists] == [(created.list_id, 0)]
    assert lists.get_list(created.list_id).description == "From the SDK"
    renamed = lists.update_list(created.list_id, UpdateListRequest(name="Renamed"))
    assert renamed.name == "Renamed"
    with pytest.raises(ApiException) as conflict:
        lists.create_list(UpdateListRequest(name="Renamed"))
    assert conflict.value.status == 409


def test_lists_paging_through_the_sdk(client: ApiClient) -> None:
    lists = ContactListsApi(client)
    for n in range(3):
        lists.create_list(UpdateListRequest(name=f"List {n}"))
    page = lists.get_all_lists(limit=2)
    assert len(page.lists) == 2
    assert page.links.next.href.startswith("/v3/contact_lists?cursor=")


def test_json_import_and_activity_status_through_the_sdk(cc: CC, client: ApiClient) -> None:
    list_id = ContactListsApi(client).create_list(UpdateListRequest(name="Import target")).list_id
    bulk = BulkActivitiesApi(client)
    created = bulk.create_import_json_activity(
        CreateImportJSONActivityRequest(import_data=_rows(25), list_ids=[list_id])
    )
    assert created.state == "initialized"
    assert created.status.items_total_count == 25
    status = bulk.get_activity_by_id(created.activity_id)
    assert status.state == "completed"
    assert status.percent_done == 100
    assert status.status.person_count == 25
    assert status.completed_at is not None
    recent = bulk.get_all_activities(limit=5)
    assert [a.activity_id for a in recent.activities] == [created.activity_id]
    assert set(cc.members(list_id)) == {f"sdk{n}@example.com" for n in range(25)}
    contacts = ContactsApi(client).get_all_contacts(email="sdk3@example.com", include="list_memberships")
    assert contacts.contacts[0].list_memberships == [list_id]
    assert contacts.contacts[0].email_address.permission_to_send == "implicit"


def test_activity_in_progress_through_the_sdk(cc: CC, client: ApiClient) -> None:
    cc.limits(instant_activities=False, activity_rows_per_second=1)
    list_id = ContactListsApi(client).create_list(UpdateListRequest(name="Slow")).list_id
    bulk = BulkActivitiesApi(client)
    created = bulk.create_import_json_activity(
        CreateImportJSONActivityRequest(import_data=_rows(500), list_ids=[list_id])
    )
    status = bulk.get_activity_by_id(created.activity_id)
    assert status.state == "processing"
    assert 0 <= status.percent_done < 100
    assert status.started_at is not None
    assert status.completed_at is None


def test_sdk_sees_the_401(cc: CC, client: ApiClient) -> None:
    cc.control("tokens/expire", {"access_token": cc.access_token})
    with pytest.raises(UnauthorizedException) as error:
        ContactListsApi(client).get_all_lists()
    assert error.value.status == 401
    assert error.value.body == '{"error_key":"unauthorized","error_message":"Unauthorized"}'


def test_contact_created_unsubscribed_and_resubscribed_through_the_sdk(cc: CC, client: ApiClient) -> None:
    """The documented way: POST the contact, PUT it with permission_to_send unsubscribed and
    update_source Contact, then ask it (once) to resubscribe."""
    list_id = ContactListsApi(client).create_list(UpdateListRequest(name="Customers")).list_id
    contacts = ContactsApi(client)
    created = contacts.create_contact(
        CreateContactRequest(
            email_address=CreateContactRequestEmailAddress(
                address="Ada@Example.com", permission_to_send="explicit"
            ),
            first_name="Ada",
            last_name="Lovelace",
            create_source="Account",
            list_memberships=[list_id],
        )
    )
    assert created.email_address.address == "ada@example.com"
    assert created.email_address.permission_to_send == "explicit"
    assert created.list_memberships == [list_id]
    with pytest.raises(ApiException) as duplicate:
        contacts.create_contact(
            CreateContactRequest(
                email_address=CreateContactRequestEmailAddress(address="ada@example.com"),
                create_source="Account",
            )
        )
    assert duplicate.value.status == 409
    assert created.contact_id in duplicate.value.body

    updated = contacts.update_contact(
        created.contact_id,
        UpdateContactRequest(
            email_address=UpdateContactRequestEmailAddress(
                address="ada@example.com", permission_to_send="unsubscribed", opt_out_reason="Too many emails"
            ),
            first_name="Ada",
            update_source="Contact",
        ),
    )
    assert updated.email_address.permission_to_send == "unsubscribed"
    assert updated.email_address.opt_out_source == "Contact"
    assert updated.email_address.opt_out_reason == "Too many emails"
    assert updated.last_name is None  # a PUT replaces the top-level properties
    assert cc.members(list_id)["ada@example.com"]["permission_to_send"] == "unsubscribed"

    # the account cannot opt the contact back in; the contact can ask to, once
    with pytest.raises(ApiException) as refused:
        contacts.update_contact(
            created.contact_id,
            UpdateContactRequest(
                email_address=UpdateContactRequestEmailAddress(
                    address="ada@example.com", permission_to_send="implicit"
                ),
                update_source="Account",
            ),
        )
    assert refused.value.status == 400
    contacts.resubscribe_contact(created.contact_id, ResubscribeContactRequest(list_ids=[list_id]))
    pending = contacts.get_contact_by_id(created.contact_id)
    assert pending.email_address.permission_to_send == "pending_confirmation"
    with pytest.raises(ApiException) as again:
        contacts.resubscribe_contact(created.contact_id, ResubscribeContactRequest(list_ids=[list_id]))
    assert again.value.status == 409
    assert cc.control("contacts/confirm", {"email": "ada@example.com"}).json() == {"confirmed": 1}
    assert contacts.get_contact_by_id(created.contact_id).email_address.permission_to_send == "explicit"


def test_put_revives_a_deleted_contact_only_for_the_account(cc: CC, client: ApiClient) -> None:
    contacts = ContactsApi(client)
    created = contacts.create_contact(
        CreateContactRequest(
            email_address=CreateContactRequestEmailAddress(address="gone@example.com"),
            create_source="Contact",
        )
    )
    assert created.create_source == "Contact"
    assert created.email_address.permission_to_send == "implicit"
    contacts.delete_contact(created.contact_id)
    with pytest.raises(ApiException) as deleted:  # the email is still taken by the deleted contact
        contacts.create_contact(
            CreateContactRequest(
                email_address=CreateContactRequestEmailAddress(address="gone@example.com"),
                create_source="Account",
            )
        )
    assert deleted.value.status == 409
    body = UpdateContactRequest(
        email_address=UpdateContactRequestEmailAddress(address="gone@example.com"), update_source="Contact"
    )
    with pytest.raises(ApiException) as by_contact:
        contacts.update_contact(created.contact_id, body)
    assert by_contact.value.status == 400
    body.update_source = "Account"
    revived = contacts.update_contact(created.contact_id, body)
    assert revived.deleted_at is None
    assert [c.contact_id for c in contacts.get_all_contacts().contacts] == [created.contact_id]


def test_custom_field_with_metadata_and_choices_through_the_sdk(client: ApiClient) -> None:
    fields = ContactsCustomFieldsApi(client)
    created = fields.create_custom_fields(
        CreateCustomFieldsRequest(
            label="T-shirt size",
            type="single_select",
            metadata=GetCustomField200ResponseMetadata(display_type="radio"),
            choices=[CreateCustomFieldsRequestChoicesInner(choice_label=size) for size in ("S", "M", "L")],
        )
    )
    assert created.name == "T-shirt_size"
    assert created.metadata.display_type == "radio"
    assert [(c.choice_id, c.choice_label) for c in created.choices] == [(1, "S"), (2, "M"), (3, "L")]
    assert {c.custom_field_id for c in created.choices} == {created.custom_field_id}
    assert all(c.created_at is not None for c in created.choices)  # timestamps parse as datetimes
    with pytest.raises(ApiException) as bad:
        fields.create_custom_fields(
            CreateCustomFieldsRequest(
                label="Price", type="number", metadata=GetCustomField200ResponseMetadata(decimal_places=7)
            )
        )
    assert bad.value.status == 400
