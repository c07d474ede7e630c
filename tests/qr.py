"""Read a QR code back from PNG bytes, as a phone's camera would."""

from __future__ import annotations

import io

import zxingcpp
from PIL import Image


def decode_qr(png: bytes) -> tuple[str, str]:
    """The text of the one barcode in the image, and its format's name."""
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(found) == 1, f"expected one barcode, found {len(found)}"
    return found[0].text, found[0].format.name
