"""Emulator of the Constant Contact API v3 (OAuth 2, lists, JSON import activities, contacts).

Ground truth: ``reference/constant-contact-api.md``; choices where it is unsure are listed in
``docs/sandbox-constant-contact.md``.
"""

from segmentsync.sandbox.constant_contact.app import create_app

__all__ = ["create_app"]
