"""Fresh development keys for a sandbox; never real Cimplify credentials."""

from __future__ import annotations

import base64
import secrets


def new_secret_key() -> str:
    return "sk_test_" + secrets.token_urlsafe(24)


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
