"""The upload page in a real browser: Debian's headless Chromium driven by Playwright.

Runs against a live gunicorn server with the bundled model. Screenshots (desktop and
phone width) go to test-output/browser/. Any console error fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright
from servers import ROOT, gunicorn

from app.config import DEFAULT_MODEL_PATH

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = ROOT / "test-output" / "browser"
EXAMPLES = ROOT / "static" / "examples"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("browser") / "gunicorn.log"
    with gunicorn(DEFAULT_MODEL_PATH, log, MAX_CONTENT_LENGTH="2000000") as (url, _):
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Chromium missing: scripts/bootstrap.sh dev installs it"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


def _page(browser: Browser, base_url: str, *, javascript: bool = True,
          width: int = 1280, height: int = 900) -> Iterator[Page]:
    """A fresh page on the upload form; fails the test on any console error.

    A test that provokes an HTTP error on purpose removes the browser's own
    "Failed to load resource" line from `page.console_errors` after checking it.
    """
    context = browser.new_context(java_script_enabled=javascript,
                                  viewport={"width": width, "height": height})
    page = context.new_page()
    errors: list[str] = []
    page.console_errors = errors  # type: ignore[attr-defined]
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base_url + "/")
    yield page
    context.close()
    assert errors == [], f"console errors: {errors}"


@pytest.fixture()
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    yield from _page(browser, base_url)


@pytest.fixture()
def phone(browser: Browser, base_url: str) -> Iterator[Page]:
    yield from _page(browser, base_url, width=390, height=844)


@pytest.fixture()
def no_js_page(browser: Browser, base_url: str) -> Iterator[Page]:
    yield from _page(browser, base_url, javascript=False)


def _bar_values(page: Page) -> list[float]:
    meters = page.locator("#bars [role=meter]")
    return [float(meters.nth(i).get_attribute("aria-valuenow") or "nan")
            for i in range(meters.count())]


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_choose_a_file_and_see_label_and_bars(page: Page) -> None:
    url_before = page.url
    page.set_input_files("#image-input", str(EXAMPLES / "ankle_boot.png"))
    expect(page.locator("#preview")).to_be_visible()
    page.click("#submit-button")
    expect(page.locator("#top-label")).to_have_text("Ankle boot")
    values = _bar_values(page)
    assert len(values) == 10 and values == sorted(values, reverse=True)
    assert values[0] > 50
    expect(page.locator("#latency")).to_contain_text("ms")
    assert page.url == url_before, "no page reload with JavaScript on"
    expect(page.locator("#result-heading")).to_be_focused()
    _shot(page, "desktop-result")


def test_example_strip_classifies_with_one_click(page: Page) -> None:
    page.click("button.example[data-src$='trouser.png']")
    expect(page.locator("#top-label")).to_have_text("Trouser")


def test_paste_from_clipboard(page: Page) -> None:
    data = list((EXAMPLES / "sneaker.png").read_bytes())
    page.evaluate("""(bytes) => {
        const file = new File([new Uint8Array(bytes)], "pasted.png", {type: "image/png"});
        const data = new DataTransfer();
        data.items.add(file);
        document.dispatchEvent(new ClipboardEvent("paste", {clipboardData: data}));
    }""", data)
    expect(page.locator("#top-label")).to_have_text("Sneaker")


def test_wrong_files_show_clear_messages(page: Page, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    page.set_input_files("#image-input", str(text))
    expect(page.locator("#form-message")).to_contain_text("is not an image")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    page.set_input_files("#image-input", str(broken))
    expect(page.locator("#form-message")).to_contain_text("could not be read as an image")
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + b"\0" * 2_100_000)
    page.set_input_files("#image-input", str(big))
    expect(page.locator("#form-message")).to_contain_text("the limit is 1.9 MiB")
    expect(page.locator("#result")).to_be_hidden()


def test_server_errors_are_shown_too(page: Page, tmp_path: Path) -> None:
    """A TIFF the browser cannot check: the server's JSON message is shown."""
    broken = tmp_path / "scan.tiff"
    broken.write_bytes(b"II*\0" + b"\0" * 64)
    page.set_input_files("#image-input", str(broken))
    page.click("#submit-button")
    expect(page.locator("#form-message")).to_contain_text("not an image we can read")
    expected = "Failed to load resource: the server responded with a status of 400 (BAD REQUEST)"
    assert page.console_errors == [expected]  # type: ignore[attr-defined]
    page.console_errors.clear()  # type: ignore[attr-defined]


def test_phone_width_is_usable(phone: Page) -> None:
    phone.set_input_files("#image-input", str(EXAMPLES / "bag.png"))
    phone.click("#submit-button")
    expect(phone.locator("#top-label")).to_have_text("Bag")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "no horizontal scrolling on a phone"
    _shot(phone, "phone-result")


@pytest.mark.parametrize("width", [320, 390])
def test_the_title_is_one_line_on_a_phone(browser: Browser, base_url: str, width: int) -> None:
    """It wrapped to "Classify an / image" at 390 px on a phone whose font is a little
    wider than this browser's (here it filled 317 of 318 px): one line, with room."""
    for page in _page(browser, base_url, width=width, height=844):
        lines, text, room = page.evaluate("""() => {
            const h1 = document.querySelector("h1");
            const range = document.createRange();
            range.selectNodeContents(h1);
            return [h1.getBoundingClientRect().height
                        / parseFloat(getComputedStyle(h1).lineHeight),
                    range.getBoundingClientRect().width, h1.clientWidth];
        }""")
        assert round(lines) == 1, f"the title takes {lines:.2f} lines at {width} px"
        assert text <= 0.9 * room, f"the title fills {text:.0f} of {room} px at {width} px"


def test_a_white_photo_is_previewed_without_black_bars(page: Page, tmp_path: Path) -> None:
    """The preview box is square; a wide photo leaves room above and below it, which
    was painted black."""
    photo = tmp_path / "white.jpg"
    Image.new("RGB", (400, 200), (255, 255, 255)).save(photo)
    page.set_input_files("#image-input", str(photo))
    preview = page.locator("#preview")
    expect(preview).to_be_visible()
    shot = tmp_path / "preview.png"
    preview.screenshot(path=str(shot))
    darkest = Image.open(shot).convert("L").getextrema()[0]
    assert darkest > 200, f"a dark pixel ({darkest}) around a white photo"


# Everything a user sees on the upload page; each must stay inside its card.
LAID_OUT = ["#drop-zone", "#image-input", "#submit-button", "#form-message", ".examples",
            "button.example", ".lead", "#top-label", "#bars li", "#low-confidence",
            "#known-labels", ".model-card dd", ".explain-toggle", "#explanation .overlay-stack",
            "#opacity", ".legend"]


def _outside_their_card(page: Page) -> list[str]:
    """Elements whose box sticks out of their card, and the page's sideways scroll."""
    found = page.evaluate("""(selectors) => {
        const out = [];
        for (const selector of selectors) {
            for (const element of document.querySelectorAll(selector)) {
                const box = element.getBoundingClientRect();
                if (!box.width || element.closest("[hidden]")) continue;
                const card = element.closest(".card").getBoundingClientRect();
                if (box.left < card.left - 0.5 || box.right > card.right + 0.5) {
                    out.push(`${selector}: ${box.left.toFixed(0)}-${box.right.toFixed(0)} ` +
                             `outside ${card.left.toFixed(0)}-${card.right.toFixed(0)}`);
                }
            }
        }
        if (document.documentElement.scrollWidth > window.innerWidth) {
            out.push(`page scrolls sideways: ${document.documentElement.scrollWidth}`);
        }
        return out;
    }""", LAID_OUT)
    return list(found)


@pytest.mark.parametrize("width", [320, 390, 1280])
def test_nothing_sticks_out_of_its_card(browser: Browser, base_url: str, width: int,
                                        tmp_path: Path) -> None:
    for page in _page(browser, base_url, width=width, height=800):
        assert _outside_their_card(page) == [], "empty form"
        if width in (320, 1280):
            _shot(page, f"page-{width}-before")
        long_name = tmp_path / ("a-very-long-file-name-" * 6 + ".txt")
        long_name.write_text("not a picture")
        page.set_input_files("#image-input", str(long_name))
        expect(page.locator("#form-message")).to_contain_text("is not an image")
        assert _outside_their_card(page) == [], "with an error message"
        page.click("button.example[data-src$='sandal.png']")
        expect(page.locator("#top-label")).to_have_text("Sandal")
        assert _outside_their_card(page) == [], "with a result"
        if width in (320, 1280):
            _shot(page, f"page-{width}-after")


def test_examples_have_captions_and_are_classified_right(page: Page) -> None:
    captions = page.locator("button.example .example-caption")
    expect(captions).to_have_count(10)
    expect(captions.first).to_be_visible()
    expect(captions.first).to_have_text("T-shirt/top")
    page.locator("button.example").first.click()
    expect(page.locator("#top-label")).to_have_text("T-shirt/top")
    top = _bar_values(page)[0]
    assert top >= 90, f"the first example is only {top} % sure"
    expect(page.locator("#low-confidence")).to_be_hidden()


def _noise_png(folder: Path) -> Path:
    """Seeded random colour noise: an image the bundled model cannot be sure about."""
    path = folder / "noise.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    return path


def test_unsure_answers_are_flagged_with_what_the_model_knows(page: Page, base_url: str,
                                                             tmp_path: Path) -> None:
    """Random colour noise is no garment: the model's best guess is under the card's 0.6."""
    noise = _noise_png(tmp_path)
    answer = requests.post(base_url + "/predictlabel", files={"image": noise.open("rb")},
                           timeout=30).json()
    assert max(p["probability"] for p in answer["predictions"]) < 0.6
    page.set_input_files("#image-input", str(noise))
    page.click("#submit-button")
    expect(page.locator("#low-confidence")).to_be_visible()
    expect(page.locator("#known-labels")).to_contain_text("T-shirt/top, Trouser, Pullover")
    page.click("button.example[data-src$='bag.png']")
    expect(page.locator("#top-label")).to_have_text("Bag")
    expect(page.locator("#low-confidence")).to_be_hidden()


def test_unsure_answers_are_flagged_without_javascript_too(no_js_page: Page,
                                                          tmp_path: Path) -> None:
    noise = _noise_png(tmp_path)
    no_js_page.set_input_files("#image-input", str(noise))
    with no_js_page.expect_navigation():
        no_js_page.click("#submit-button")
    expect(no_js_page.locator("#low-confidence")).to_be_visible()


def test_an_error_hides_the_previous_result(page: Page, tmp_path: Path) -> None:
    page.click("button.example[data-src$='coat.png']")
    expect(page.locator("#top-label")).to_have_text("Coat")
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    page.set_input_files("#image-input", str(text))
    expect(page.locator("#form-message")).to_contain_text("is not an image")
    expect(page.locator("#result")).to_be_hidden()


def test_one_chooser_with_javascript_the_native_one_without(page: Page,
                                                            no_js_page: Page) -> None:
    """The drop zone is the file chooser; the native button shows only without JavaScript."""
    assert page.locator("#image-input").bounding_box()["width"] <= 1
    assert no_js_page.locator("#image-input").bounding_box()["width"] > 50


def test_form_works_without_javascript(no_js_page: Page) -> None:
    page = no_js_page
    page.set_input_files("#image-input", str(EXAMPLES / "dress.png"))
    with page.expect_navigation():
        page.click("#submit-button")
    expect(page.locator("#top-label")).to_have_text("Dress")
    assert len(_bar_values(page)) == 10
    _shot(page, "no-js-result")


def _heat_pixels(page: Page) -> dict[str, float]:
    """The canvas's size, its colour spread, and how it sits over the image."""
    return page.evaluate("""() => {
        const canvas = document.getElementById("heatmap");
        const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        const reds = [];
        for (let i = 0; i < data.length; i += 4) reds.push(data[i]);
        const image = document.getElementById("overlay-image").getBoundingClientRect();
        const box = canvas.getBoundingClientRect();
        return {width: canvas.width, spread: Math.max(...reds) - Math.min(...reds),
                opacity: Number(getComputedStyle(canvas).opacity),
                offset: Math.abs(box.left - image.left) + Math.abs(box.width - image.width)
                        + Math.abs(box.height - image.height)};
    }""")


@pytest.mark.parametrize("width", [320, 1280])
def test_the_explain_toggle_shows_a_heatmap_over_the_image(browser: Browser, base_url: str,
                                                           width: int) -> None:
    for page in _page(browser, base_url, width=width, height=900):
        page.check("#explain-toggle")
        page.click("button.example[data-src$='ankle_boot.png']")
        expect(page.locator("#top-label")).to_have_text("Ankle boot")
        expect(page.locator("#explanation")).to_be_visible()
        expect(page.locator("#explanation-caption")).to_contain_text("Grad-CAM on layer")
        heat = _heat_pixels(page)
        assert heat["width"] == 28 and heat["spread"] > 50, heat
        assert heat["offset"] < 1 and heat["opacity"] == 0.5, "the heatmap covers the image"
        page.fill("#opacity", "80")
        assert _heat_pixels(page)["opacity"] == 0.8
        assert _outside_their_card(page) == []
        _shot(page, f"explain-{width}")
        page.uncheck("#explain-toggle")
        page.click("button.example[data-src$='bag.png']")
        expect(page.locator("#top-label")).to_have_text("Bag")
        expect(page.locator("#explanation")).to_be_hidden()


def test_without_javascript_the_server_draws_the_overlay(no_js_page: Page) -> None:
    page = no_js_page
    page.set_input_files("#image-input", str(EXAMPLES / "coat.png"))
    page.check("#explain-toggle")
    with page.expect_navigation():
        page.click("#submit-button")
    expect(page.locator("#top-label")).to_have_text("Coat")
    overlay = page.locator("#overlay-image")
    expect(overlay).to_be_visible()
    assert overlay.get_attribute("src").startswith("data:image/png;base64,")
    assert page.evaluate("document.getElementById('overlay-image').naturalWidth") == 28
    expect(page.locator("#opacity")).to_be_hidden()
    expect(page.locator(".legend")).to_be_visible()
    _shot(page, "no-js-explain")


def test_keyboard_only_user_reaches_every_control(page: Page) -> None:
    reached = set()
    for _ in range(20):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement.id || document.activeElement.className"))
    assert {"image-input", "explain-toggle", "submit-button", "example"} <= reached


KEY = "browser-key-0123456789abcdef"


@pytest.fixture(scope="module")
def keyed_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("browser-keys")
    (folder / "api-keys").write_text(f"page {KEY}\n")
    with gunicorn(DEFAULT_MODEL_PATH, folder / "gunicorn.log", AUTH="keys",
                  API_KEYS_FILE=str(folder / "api-keys"), CORS_ORIGINS="") as (url, _):
        yield url


@pytest.mark.parametrize("javascript", [True, False])
def test_with_keys_on_the_page_asks_for_one_and_then_answers(browser: Browser, keyed_url: str,
                                                             javascript: bool) -> None:
    for page in _page(browser, keyed_url, javascript=javascript):
        page.fill("#api-key", KEY)
        page.set_input_files("#image-input", str(EXAMPLES / "bag.png"))
        if javascript:
            page.click("#submit-button")
        else:
            with page.expect_navigation():
                page.click("#submit-button")
        expect(page.locator("#top-label")).to_have_text("Bag")
        if javascript:  # kept for this tab: a reload finds it filled in
            page.reload()
            expect(page.locator("#api-key")).to_have_value(KEY)
