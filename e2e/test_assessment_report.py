"""The maturity report in a real browser: `menshen assess` over the running
demo deployment writes the HTML report in zh-TW and in English; Chromium opens
each file, finds all 36 principles and the pillar × level heat map, and saves a
screenshot. Chinese must render with real glyphs: the fonts Chromium actually
used for the title (DevTools `CSS.getPlatformFontsForNode`) are CJK fonts, and
the title's characters draw as distinct shapes (tofu boxes are all alike). A
browser whose fontconfig only knows DejaVu (no CJK) must fail the same check,
so the check can fail. `--format pdf` gives a PDF."""
import json
import os
import pathlib
import tempfile

import pytest

from conftest import CHROMIUM, ROOT

CATALOG = ROOT.parent / "shared" / "guideline" / "principles.json"

# Draws each character on a canvas in the title's font and returns its ink
# and its bitmap: real glyphs differ from each other, .notdef boxes do not.
GLYPHS_JS = """(chars) => {
  const family = getComputedStyle(document.querySelector('h1')).fontFamily;
  const canvas = document.createElement('canvas');
  canvas.width = 64; canvas.height = 64;
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  return chars.map((ch) => {
    ctx.clearRect(0, 0, 64, 64);
    ctx.font = `44px ${family}`;
    ctx.textBaseline = 'top';
    ctx.fillStyle = '#000';
    ctx.fillText(ch, 6, 6);
    const data = ctx.getImageData(0, 0, 64, 64).data;
    let ink = 0, bits = '';
    for (let i = 3; i < data.length; i += 4) { const on = data[i] > 127; if (on) ink++; bits += on ? '1' : '0'; }
    return {ch, ink, bits};
  });
}"""


def principle_ids():
    return [p["id"] for p in json.loads(CATALOG.read_text(encoding="utf-8"))["principles"]]


def write_report(demo, directory: pathlib.Path, lang: str, fmt: str = "html") -> pathlib.Path:
    out = directory / f"assessment-{lang}.{fmt}"
    demo.cli("assess", "--format", fmt, "--lang", lang, "--out", str(out))
    assert out.exists()
    return out


def used_fonts(context, page, selector: str):
    """The platform fonts Chromium used to draw the element's text."""
    cdp = context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    return [f["familyName"] for f in cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]]


def cjk_glyphs(context, page):
    """(fonts used for the title, glyph records of its distinct characters)."""
    title = page.inner_text("h1")
    chars = list(dict.fromkeys(c for c in title if "\u4e00" <= c <= "\u9fff"))
    assert len(chars) >= 6, title
    return used_fonts(context, page, "h1"), page.evaluate(GLYPHS_JS, chars)


def renders_real_cjk(fonts, glyphs) -> bool:
    distinct = {g["bits"] for g in glyphs}
    return any("CJK" in f or " TC" in f for f in fonts) and all(g["ink"] > 20 for g in glyphs) \
        and len(distinct) == len(glyphs)


@pytest.mark.parametrize("lang", ["zh-TW", "en"])
def test_report_shows_36_principles_and_heat_map(demo, chromium, artifacts, lang, tmp_path):
    report = write_report(demo, tmp_path, lang)
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(report.as_uri())
    assert page.get_attribute("html", "lang") == lang
    ids = page.eval_on_selector_all("article.principle[data-principle]", "els => els.map(e => e.dataset.principle)")
    assert ids == principle_ids()
    assert page.locator("#heatmap").is_visible()
    assert page.locator("#heatmap .heat-cell").count() == 20
    assert page.locator("svg.pillar-chart").count() == 5
    assert page.locator("#scenarios .scenario").count() == 6
    # Every principle is visible text, with a verdict badge, in the report's language.
    badge = "Not measurable yet" if lang == "en" else "尚無法量測"
    first = page.locator("article.principle[data-principle='1.1']")
    assert first.is_visible()
    verdict = first.get_attribute("data-verdict")
    if verdict == "not_measurable_yet":
        assert badge in first.inner_text()
    # Self-contained: the browser fetched nothing but the file itself.
    assert requests == [report.as_uri()], requests
    page.screenshot(path=str(artifacts / f"assessment-report-{lang}.png"), full_page=True)
    # Printable: each pillar starts a new page when printed, and principles are not split across pages.
    page.emulate_media(media="print")
    assert page.eval_on_selector_all("section.pillar", "els => els.map(e => getComputedStyle(e).breakBefore)") == ["page"] * 5
    assert page.eval_on_selector("article.principle", "e => getComputedStyle(e).breakInside") == "avoid"
    page.emulate_media(media="screen")
    page.locator("#heatmap").screenshot(path=str(artifacts / f"assessment-heatmap-{lang}.png"))
    if lang == "zh-TW":
        fonts, glyphs = cjk_glyphs(context, page)
        assert renders_real_cjk(fonts, glyphs), f"CJK text does not render with real glyphs: fonts {fonts}, " \
            f"ink {[g['ink'] for g in glyphs]}, distinct {len({g['bits'] for g in glyphs})}/{len(glyphs)}"
    context.close()


def test_cjk_check_fails_without_a_cjk_font(demo, chromium, artifacts, tmp_path):
    """The glyph check is honest: a Chromium whose fontconfig sees only DejaVu
    (no CJK coverage) draws tofu, and the same check reports it."""
    dejavu = pathlib.Path("/usr/share/fonts/truetype/dejavu")
    assert dejavu.is_dir(), "fonts-dejavu-core is needed for the negative control"
    report = write_report(demo, tmp_path, "zh-TW")
    with tempfile.TemporaryDirectory(prefix="menshen-fc-") as fc:
        conf = pathlib.Path(fc) / "fonts.conf"
        conf.write_text(f"""<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig><dir>{dejavu}</dir><cachedir>{fc}/cache</cachedir></fontconfig>
""")
        env = dict(os.environ, FONTCONFIG_FILE=str(conf))
        # A second browser from the same Playwright driver, with its own fontconfig.
        browser = chromium.browser_type.launch(executable_path=CHROMIUM, headless=True, env=env)
        try:
            context = browser.new_context()
            page = context.new_page()
            page.goto(report.as_uri())
            fonts, glyphs = cjk_glyphs(context, page)
            page.locator("h1").screenshot(path=str(artifacts / "assessment-title-without-cjk-font.png"))
            assert not renders_real_cjk(fonts, glyphs), f"expected tofu without a CJK font; fonts {fonts}"
        finally:
            browser.close()


def test_pdf_report(demo, artifacts, tmp_path):
    pdf = write_report(demo, tmp_path, "zh-TW", "pdf")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-"), data[:16]
    assert len(data) > 20_000
    # Chromium embedded a Traditional Chinese font, so the printed Chinese is real text, not boxes.
    assert b"NotoSansCJKtc" in data
    (artifacts / "assessment-report-zh-TW.pdf").write_bytes(data)
