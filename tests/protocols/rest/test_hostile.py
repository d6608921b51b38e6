"""The hostile-input corpus against the Flask app with the bundled model and default limits."""

from __future__ import annotations

import pytest
from hostile import Case, corpus

from app.config import Settings

DEFAULTS = Settings()
CASES = corpus(DEFAULTS.MAX_CONTENT_LENGTH, DEFAULTS.MAX_PREDICT_ROWS, DEFAULTS.MAX_IMAGE_PIXELS)


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 40
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_hostile_input_gets_its_exact_answer(fashion_app, case: Case) -> None:
    client = fashion_app.test_client()
    headers = {**case.headers,
                       **({"Content-Type": case.content_type} if case.content_type else {})}
    response = client.post(case.path, data=case.body, headers=headers)
    assert response.status_code == case.status, response.get_data(as_text=True)[:300]
    body = response.get_json()
    if case.code is None:
        assert body["success"] is True if case.path == "/predictlabel" else isinstance(body, list)
    else:
        assert body["success"] is False and body["error"]["code"] == case.code
        assert len(body["error"]["message"]) > 20, "the message says what to fix"
    assert client.get("/readyz").status_code == 200


UPLOADS = [case for case in CASES if case.path == "/predictlabel"]


@pytest.mark.parametrize("case", UPLOADS, ids=lambda case: case.name)
def test_explain_answers_hostile_uploads_exactly_like_predictlabel(fashion_app,
                                                                   case: Case) -> None:
    client = fashion_app.test_client()
    headers = {**case.headers,
               **({"Content-Type": case.content_type} if case.content_type else {})}
    response = client.post("/explain", data=case.body, headers=headers)
    assert response.status_code == case.status, response.get_data(as_text=True)[:300]
    body = response.get_json()
    if case.code is None:
        assert body["success"] is True and body["explanation"]["heatmap"]
    else:
        assert body["success"] is False and body["error"]["code"] == case.code
