"""Creating and changing lists and their custom-field definitions (bodies already lower-keyed)."""

from __future__ import annotations

from typing import Any

from segmentsync.sandbox.campaign_monitor import errors
from segmentsync.sandbox.campaign_monitor.fields import (
    DATA_TYPES,
    MULTI_MANY,
    MULTI_ONE,
    CustomField,
    key_for,
)
from segmentsync.sandbox.campaign_monitor.store import (
    ALL_CLIENT_LISTS,
    ONLY_THIS_LIST,
    MailingList,
    Store,
    new_id,
)
from segmentsync.sandbox.campaign_monitor.subscribers import as_bool

UNSUBSCRIBE_SETTINGS = {setting.lower(): setting for setting in (ALL_CLIENT_LISTS, ONLY_THIS_LIST)}


def _text(body: dict[str, Any], name: str, what: str) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise errors.not_deserializable(what)
    return value


def _list_settings(
    store: Store, client_id: str, body: dict[str, Any], exclude: MailingList | None
) -> dict[str, Any]:
    title = _text(body, "title", "list").strip()
    if not title:
        raise errors.bad_request(errors.EMPTY_LIST_TITLE)
    for other in store.client_lists(client_id):
        if other is not exclude and other.title.lower() == title.lower():
            raise errors.bad_request(errors.DUPLICATE_LIST_TITLE)
    raw_setting = body.get("unsubscribesetting") or ALL_CLIENT_LISTS
    setting = UNSUBSCRIBE_SETTINGS.get(raw_setting.lower()) if isinstance(raw_setting, str) else None
    if setting is None:
        raise errors.bad_request(errors.INVALID_UNSUBSCRIBE_SETTING)
    return {
        "title": title,
        "unsubscribe_page": _text(body, "unsubscribepage", "list"),
        "confirmed_opt_in": as_bool(body.get("confirmedoptin"), "list"),
        "confirmation_success_page": _text(body, "confirmationsuccesspage", "list"),
        "unsubscribe_setting": setting,
    }


def create_list(store: Store, client_id: str, body: dict[str, Any]) -> MailingList:
    settings = _list_settings(store, client_id, body, exclude=None)
    mailing_list = MailingList(list_id=new_id(), client_id=client_id, **settings)
    store.add_list(mailing_list)
    return mailing_list


def update_list(store: Store, mailing_list: MailingList, body: dict[str, Any]) -> None:
    settings = _list_settings(store, mailing_list.client_id, body, exclude=mailing_list)
    for name, value in settings.items():
        setattr(mailing_list, name, value)
    mailing_list.add_unsubscribes_to_supp_list = as_bool(body.get("addunsubscribestosupplist"), "list")
    mailing_list.scrub_active_with_supp_list = as_bool(body.get("scrubactivewithsupplist"), "list")
    mailing_list.touch()


def _options(body: dict[str, Any]) -> list[str]:
    options = body.get("options")
    if options is None:
        return []
    if not isinstance(options, list) or not all(isinstance(option, str) for option in options):
        raise errors.not_deserializable("field")
    return [option.strip() for option in options if option.strip()]


def _check_name(mailing_list: MailingList, name: object, exclude: CustomField | None) -> str:
    if not isinstance(name, str) or not name.strip() or key_for(name.strip()) == "[]":
        raise errors.bad_request(errors.INVALID_FIELD_NAME)
    name = name.strip()
    for field in mailing_list.fields.values():
        if field is not exclude and (
            field.name.lower() == name.lower() or field.key.lower() == key_for(name).lower()
        ):
            raise errors.bad_request(errors.FIELD_EXISTS)
    return name


def create_field(mailing_list: MailingList, body: dict[str, Any]) -> CustomField:
    name = _check_name(mailing_list, body.get("fieldname"), exclude=None)
    raw_type = body.get("datatype")
    data_type = DATA_TYPES.get(raw_type.lower()) if isinstance(raw_type, str) else None
    if data_type is None:
        raise errors.bad_request(errors.INVALID_DATA_TYPE)
    options = _options(body)
    multi = data_type in (MULTI_ONE, MULTI_MANY)
    if multi and not options:
        raise errors.bad_request(errors.OPTIONS_REQUIRED)
    if not multi and options:
        raise errors.bad_request(errors.OPTIONS_NOT_ALLOWED)
    visible = body.get("visibleinpreferencecenter")
    field = CustomField(
        name=name,
        data_type=data_type,
        options=options,
        visible=True if visible is None else as_bool(visible, "field"),
    )
    mailing_list.fields[field.key] = field
    mailing_list.rebuild_field_lookup()
    mailing_list.touch()
    return field


def find_field(mailing_list: MailingList, key: str) -> CustomField:
    """The field a URL key names; keys must be bracketed (253)."""
    if not (key.startswith("[") and key.endswith("]")):
        raise errors.bad_request(errors.INVALID_FIELD_KEY)
    for field in mailing_list.fields.values():
        if field.key.lower() == key.lower():
            return field
    raise errors.bad_request(errors.INVALID_FIELD_KEY)


def _reindex(mailing_list: MailingList) -> None:
    mailing_list.fields = {field.key: field for field in mailing_list.fields.values()}
    mailing_list.rebuild_field_lookup()
    mailing_list.touch()


def update_field(mailing_list: MailingList, key: str, body: dict[str, Any]) -> CustomField:
    """Rename (the key follows the name) and/or change preference-centre visibility."""
    field = find_field(mailing_list, key)
    field.rename(_check_name(mailing_list, body.get("fieldname"), exclude=field))
    if "visibleinpreferencecenter" in body:
        field.visible = as_bool(body["visibleinpreferencecenter"], "field")
    _reindex(mailing_list)
    return field


def update_options(mailing_list: MailingList, key: str, body: dict[str, Any]) -> None:
    field = find_field(mailing_list, key)
    if field.data_type not in (MULTI_ONE, MULTI_MANY):
        raise errors.bad_request(errors.OPTIONS_NOT_ALLOWED)
    options = _options(body)
    if not options:
        raise errors.bad_request(errors.OPTIONS_REQUIRED)
    keep = as_bool(body.get("keepexistingoptions"), "field")
    field.set_options([*field.options, *options] if keep else options)
    mailing_list.touch()


def delete_field(mailing_list: MailingList, key: str) -> None:
    field = find_field(mailing_list, key)
    del mailing_list.fields[field.key]
    _reindex(mailing_list)
