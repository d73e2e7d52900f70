"""Campaign Monitor's error envelope ``{"Code": int, "Message": str}`` and the codes the emulator uses.

These are the *platform's* errors, answered over HTTP by the emulator; they are not the project's
domain errors (``segmentsync.errors``), which describe our own service's failures.
"""

from __future__ import annotations

from typing import Any, Final


class ApiError(Exception):
    """An answer of the emulated API: HTTP status plus CM's ``Code``/``Message`` body."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        result_data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.result_data = result_data
        self.headers = headers

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"Code": self.code, "Message": self.message}
        if self.result_data is not None:
            body["ResultData"] = self.result_data
        return body


# (code, message) pairs; the HTTP status goes with the raising site (see the reference, §3).
INVALID_EMAIL: Final = (1, "Invalid Email Address")
INVALID_DATE: Final = (5, "Invalid Date")
NO_BASIC_AUTH: Final = (50, "Must supply a valid HTTP Basic Authorization header")
NO_PERMISSION: Final = (60, "You do not have the required permission to access this resource")
INVALID_API_KEY: Final = (100, "Invalid API Key")
INVALID_LIST_ID: Final = (101, "Invalid ListID")
INVALID_CLIENT_ID: Final = (102, "Invalid ClientID")
INVALID_TOKEN: Final = (120, "Invalid OAuth Token")
EXPIRED_TOKEN: Final = (121, "Expired OAuth Token")
REVOKED_TOKEN: Final = (122, "Revoked OAuth Token")
ALREADY_SUBSCRIBED: Final = (
    201,
    "New Email Address is already subscribed to the list. Subscriber not updated.",
)
NOT_IN_LIST: Final = (203, "Email Address does not belong to the list. Subscriber not updated.")
IN_SUPPRESSION_LIST: Final = (
    204,
    "Email Address has existed in the selected list before, and currently exists in suppression list. "
    "Subscriber is not added.",
)
IS_DELETED: Final = (205, "Email Address exists in deleted list. Subscriber is not added.")
IS_UNSUBSCRIBED: Final = (206, "Email Address exists in unsubscribed list. Subscriber is not added.")
IS_BOUNCED: Final = (207, "Email Address exists in bounced list. Subscriber is not added.")
IS_UNCONFIRMED: Final = (208, "Email Address exists in unconfirmed list. Subscriber is not added.")
TOO_MANY_IN_BATCH: Final = (
    209,
    "Too many subscribers in this batch. You can only add 1000 subscribers in one call",
)
IMPORT_FAILURES: Final = (210, "Subscriber Import had some failures")
INVALID_NEW_EMAIL: Final = (211, "Invalid New Email Address")
EMPTY_BATCH: Final = (212, "No subscribers were provided in this batch")
CONSENT_MISSING: Final = (214, "Please provide a consent to track value")
CONSENT_INVALID: Final = (215, "Please provide a valid consent to track value")
INVALID_MOBILE: Final = (220, "Invalid mobile number")
INVALID_EMAIL_AND_MOBILE: Final = (221, "Invalid email address and mobile number")
DUPLICATE_LIST_TITLE: Final = (250, "Duplicate list title")
EMPTY_LIST_TITLE: Final = (251, "List Title Empty")
INVALID_FIELD_KEY: Final = (253, "Invalid Key. Keys must be surrounded with [ ]")
INVALID_FIELD_NAME: Final = (254, "Invalid Field Name")
FIELD_EXISTS: Final = (255, "The Field Name already exists in this list")
OPTIONS_NOT_ALLOWED: Final = (256, "Options defined for Text or Number Field")
OPTIONS_REQUIRED: Final = (257, "No options defined for Multi-Valued field")
INVALID_DATA_TYPE: Final = (
    259,
    "Data type is incorrect - must be one of Text, Number, MultiSelectOne, MultiSelectMany, Country, USState, Date",
)
INVALID_UNSUBSCRIBE_SETTING: Final = (261, "Invalid List Unsubscribe Setting")
NOT_FOUND: Final = (
    404,
    "We couldn't find the resource you're looking for. Please check the documentation and try again",
)
RATE_LIMITED: Final = (429, "Rate limit exceeded")
SUBSCRIBER_THROTTLED: Final = (429, "Subscriber was added too many times too quickly, try again later.")
SERVER_ERROR: Final = (500, "Sorry, we've run into a problem")
INVALID_PAGE: Final = (800, "Invalid page number")
INVALID_PAGE_SIZE: Final = (801, "Invalid page size. Page size must be between 10 and 1000")
INVALID_ORDER_FIELD: Final = (802, "Invalid order field. Must be one of email, name or date")
INVALID_ORDER_DIRECTION: Final = (803, "Invalid order direction. Must be one of asc or desc")


def bad_request(error: tuple[int, str]) -> ApiError:
    return ApiError(400, *error)


def unauthorized(error: tuple[int, str]) -> ApiError:
    return ApiError(401, *error)


def not_deserializable(what: str) -> ApiError:
    """CM's answer to a body it cannot bind (wrong JSON, wrong types, bad enum values)."""
    message = (
        "Failed to deserialize your request. \nPlease check the documentation and try again.\n"
        f"Fields in error: {what}"
    )
    return ApiError(400, 400, message)
