"""paybot draws its QR PNGs itself (bot/invoices.py): the same image segno would draw."""

from __future__ import annotations

import io

import pytest
import segno
from PIL import Image

from bot.invoices import qr_png
from tests.qr import decode_qr

URLS = [
    "a",
    "http://127.0.0.1:8080/pay/plt_8fK2abcdefghijklmnopqrstuvwx",
    "https://pay.cimplify.io/p/" + "x" * 300,
]


def pixels(png: bytes) -> tuple[tuple[int, int], bytes]:
    image = Image.open(io.BytesIO(png))
    return image.size, image.convert("L").tobytes()


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("scale", [1, 3, 8])
def test_the_png_has_segnos_pixels_and_reads_back_as_the_url(url: str, scale: int) -> None:
    drawn_by_segno = io.BytesIO()
    segno.make(url, micro=False, error="m").save(drawn_by_segno, kind="png", scale=scale, border=4)

    png = qr_png(url, scale=scale)

    assert pixels(png) == pixels(drawn_by_segno.getvalue())
    if scale == 8:
        assert decode_qr(png) == (url, "QRCode")
