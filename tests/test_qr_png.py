"""paybot draws its QR PNGs itself (bot/invoices.py): the same image segno would draw,
with the data mask fixed rather than searched for, and every one reads back as its link."""

from __future__ import annotations

import io
import secrets

import pytest
import segno
from PIL import Image

from bot.invoices import QR_MASK, qr_png
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
    segno.make(url, micro=False, error="m", mask=QR_MASK).save(
        drawn_by_segno, kind="png", scale=scale, border=4
    )

    png = qr_png(url, scale=scale)

    assert pixels(png) == pixels(drawn_by_segno.getvalue())
    if scale == 8:
        assert decode_qr(png) == (url, "QRCode")


def test_the_fixed_mask_is_read_back_from_links_of_every_shape_and_size() -> None:
    """The mask is not the one ISO's search would choose for each link; a reader must
    still read every link. Random tokens, so each run tries symbols not seen before."""
    for base in ("https://pay.cimplify.io/plt_", "http://127.0.0.1:8080/plt_"):
        for size in (8, 16, 24, 40, 60, 120):
            url = base + secrets.token_urlsafe(size)

            assert decode_qr(qr_png(url)) == (url, "QRCode")
