"""An embedded Cimplify that speaks shared/CONTRACT.md §1 and §2, for the demo and tests.

It models an external service: it never imports paybot's `bot`, `handlers` or `storage`.
"""

from sandbox.app import Sandbox
from sandbox.keys import new_secret_key, new_webhook_secret
from sandbox.server import AsgiServer, SandboxServer, run_standalone
from sandbox.webhooks import Delivery

__all__ = [
    "AsgiServer",
    "Delivery",
    "Sandbox",
    "SandboxServer",
    "new_secret_key",
    "new_webhook_secret",
    "run_standalone",
]
