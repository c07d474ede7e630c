"""Read a QR code back from PNG bytes, as a phone's camera would."""

from __future__ import annotations

import io

import zxingcpp
from PIL import Image


def decode_qr(png: bytes) -> tuple[str, str]:
    """The text of the one QR code (Micro or not) in the image, and its format's name.

    Only the QR family is looked for, as a phone's QR scanner does: with every format,
    the reader now and then also finds a Codabar in a QR code's modules (1 link in
    1,500 or so, whatever the mask), which no customer's camera would be looking for.
    """
    family = (zxingcpp.BarcodeFormat.QRCode, zxingcpp.BarcodeFormat.MicroQRCode)
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)), formats=family)
    assert len(found) == 1, f"expected one barcode, found {len(found)}"
    return found[0].text, found[0].format.name
