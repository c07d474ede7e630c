"""Every error paybot raises on purpose, in one tree.

    PaybotError
    ├── ConfigError                 a setting is missing or malformed; names it
    ├── InvalidOrderId              not 1-64 of A-Z a-z 0-9 - _ (CONTRACT §1)
    ├── InvalidPhone                not a phone number WhatsApp can reach
    ├── ChannelOff                  asked to use a channel that is not configured
    ├── CimplifyError               anything from Cimplify's API
    │   ├── CimplifyAuthError       401: our secret key was refused
    │   ├── OrderNotFound           404 on /v1/orders/{id}/payment-link
    │   ├── OrderNotPayable         409: the order cannot take payment (cancelled)
    │   ├── OrderAlreadyPaid        409 on /v1/orders/{id}/cancel: paid, cannot be cancelled
    │   ├── LinkNotFound            404 on the Pay API: unknown token
    │   ├── LinkExpired             410 on the Pay API
    │   ├── CimplifyUnavailable     5xx, timeouts, refused connections, 429, after retries
    │   └── CimplifyProtocolError   an answer that is not the shape we model
    ├── InvalidWebhook              a webhook we refuse, storing nothing
    │   ├── BadSignature            401: missing or wrong signature, stale timestamp
    │   └── BadPayload              400: verified, but not the schema
    ├── DeliveryError               sending a chat message failed
    │   ├── RetryLater              the channel asked us to wait `seconds`
    │   ├── TransientDelivery       network trouble: try again with backoff
    │   ├── PermanentDelivery       never retry: blocked, chat not found
    │   └── ChatMoved               the chat has a new id (a group became a supergroup)
    └── StoreError                  the store failed; raised out of a transaction
        ├── StoreUnavailable        locked, busy, disk full, connection lost, server
        │                           down: nothing was written; try again later
        └── StoreRejected           this data can never be stored (a broken
                                    constraint, a string the database refuses)

Stores translate their driver's exceptions into StoreError at the boundary, as
httpx maps its transports' errors into its own tree. Loops that "try again later"
catch StoreUnavailable; anything else that escapes them is a bug and is logged as one.

One place turns these into words for a chat: `bot.render.explain`.
"""

from __future__ import annotations


class PaybotError(Exception):
    """Base of every error paybot raises on purpose."""


class ConfigError(PaybotError):
    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


class InvalidOrderId(PaybotError):
    def __init__(self, text: str) -> None:
        super().__init__("order ids are 1 to 64 letters, digits, '-' or '_'")
        self.text = text


class InvalidPhone(PaybotError):
    def __init__(self, text: str, why: str) -> None:
        super().__init__(why)
        self.text = text


class ChannelOff(PaybotError):
    def __init__(self, channel: str) -> None:
        super().__init__(f"the {channel} channel is not set up")
        self.channel = channel


class CimplifyError(PaybotError):
    pass


class CimplifyAuthError(CimplifyError):
    pass


class OrderNotFound(CimplifyError):
    pass


class OrderNotPayable(CimplifyError):
    pass


class OrderAlreadyPaid(CimplifyError):
    pass


class LinkNotFound(CimplifyError):
    pass


class LinkExpired(CimplifyError):
    pass


class CimplifyUnavailable(CimplifyError):
    pass


class CimplifyProtocolError(CimplifyError):
    pass


class InvalidWebhook(PaybotError):
    status_code = 400


class BadSignature(InvalidWebhook):
    status_code = 401


class BadPayload(InvalidWebhook):
    status_code = 400


class DeliveryError(PaybotError):
    pass


class RetryLater(DeliveryError):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds} s")
        self.seconds = seconds


class TransientDelivery(DeliveryError):
    pass


class PermanentDelivery(DeliveryError):
    pass


class ChatMoved(DeliveryError):
    def __init__(self, new_chat_id: str) -> None:
        super().__init__(f"the chat moved to {new_chat_id}")
        self.new_chat_id = new_chat_id


class StoreError(PaybotError):
    pass


class StoreUnavailable(StoreError):
    pass


class StoreRejected(StoreError):
    pass
