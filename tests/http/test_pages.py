"""The upload page through the Flask test client: a plain form round trip, no JavaScript."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from helpers import encode, upload
from PIL import Image


def test_form_page_offers_an_upload(client: FlaskClient) -> None:
    page = client.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in html and 'name="image"' in html
    assert "dark, bright" in html  # model card


def test_form_post_renders_label_bars_and_preview(client: FlaskClient) -> None:
    page = upload(client, encode(Image.new("L", (28, 28), 230)), path="/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert re.search(r'id="top-label">bright<', html)
    bars = re.findall(r'<span class="bar-label">([^<]+)</span>', html)
    assert bars == ["bright", "dark"], "bars are sorted, most probable first"
    assert 'src="data:image/png;base64,' in html
    assert "ms on the server" in html


def test_form_errors_are_friendly_html(client: FlaskClient) -> None:
    page = upload(client, b"definitely not an image", path="/")
    assert page.status_code == 400 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert 'role="alert"' in html and "not an image we can read" in html
    assert 'name="image"' in html, "the form is there to try again"


def test_browser_404_is_a_page_and_api_404_is_json(client: FlaskClient) -> None:
    page = client.get("/no-such-page", headers={"Accept": "text/html,*/*;q=0.8"})
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "No such endpoint" in page.get_data(as_text=True)
    api = client.get("/no-such-page", headers={"Accept": "*/*"})
    assert api.status_code == 404 and api.get_json()["error"]["code"] == "not_found"
