"""Open the rendered report in headless Chromium: it renders, logs no errors, charts show."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from synthetic import synthetic_cube

from simulator.report import run_report as report

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium"
                                        if Path("/usr/bin/chromium").exists() else None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=180, check=False)


def _memo_cube(paths: int = 2_000):
    """The synthetic cube with what ``minersim run`` attaches from the shipped base scenario:
    its assumptions, the memo (method, limits, the fact-sheet rows it cites) and its YAML."""
    from simulator.report.outputs import assumptions_json, memo_attrs
    from simulator.scenario import load

    cube = synthetic_cube(paths=paths, months=120)
    loaded = load("base")
    cube.attrs["assumptions_json"] = assumptions_json(loaded)
    cube.attrs.update(memo_attrs(loaded, cube.attrs["assumptions_json"]))
    cube.attrs.update(company_name="CleanSpark, Inc.", ticker="CLSK",
                      scenario_description=loaded.scenario.description)
    return cube


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    path = report.write_report(_memo_cube(), tmp / "report.html")
    return tmp, path


# Measures the page as laid out at a width: the document's width against the viewport's, and
# the text of the first screen. Injected into a copy; the report itself carries no script.
_PROBE = """<script>
window.addEventListener('load', function () {
  var out = {scroll: document.documentElement.scrollWidth, view: window.innerWidth, first: ''};
  var walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  var range = document.createRange(), node;
  while ((node = walker.nextNode())) {
    if (!node.textContent.trim()) continue;
    range.selectNodeContents(node);
    var r = range.getBoundingClientRect();
    if (r.height > 0 && r.top < window.innerHeight && r.bottom > 0) out.first += node.textContent + ' ';
  }
  var pre = document.createElement('pre'); pre.id = 'probe';
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
});
</script>"""


def _probe(tmp: Path, path: Path, width: int, height: int) -> dict:
    import json

    probed = tmp / f"probe-{width}.html"
    probed.write_text(path.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"),
                      encoding="utf-8")
    out = _chromium(tmp, f"--window-size={width},{height}", "--virtual-time-budget=5000",
                    "--dump-dom", probed.as_uri())
    assert out.returncode == 0, out.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', out.stdout, re.S)
    assert found, out.stdout[-2000:]
    import html as html_mod

    return json.loads(html_mod.unescape(found.group(1)))


@pytest.mark.parametrize("width", [1400, 420])
def test_no_horizontal_overflow_and_the_first_screen_answers(page, width):
    """Tables scroll inside their boxes: the page itself is never wider than the window. The
    first screen names the company and gives the fair value against the market price."""
    tmp, path = page
    probe = _probe(tmp, path, width, 900)
    assert probe["scroll"] <= probe["view"], probe
    first = " ".join(probe["first"].split())
    assert "CleanSpark" in first and "CLSK" in first, first
    assert re.search(r"fair value \$\d", first, re.I), first
    assert "$14.57" in first, first


def _pdf_outline(pdf: bytes) -> list[str]:
    """The titles of a PDF's document outline (Chromium writes one from the headings)."""
    titles = []
    for raw in re.findall(rb"/Title\s*(<[0-9A-Fa-f]+>|\((?:\\.|[^\\)])*\))", pdf):
        if raw.startswith(b"<"):
            titles.append(bytes.fromhex(raw[1:-1].decode()).decode("utf-16"))
        else:
            titles.append(re.sub(rb"\\(.)", rb"\1", raw[1:-1]).decode("latin-1"))
    return [t.lstrip("\ufeff") for t in titles]


def test_print_to_pdf_renders_every_section(page):
    tmp, path = page
    pdf = tmp / "report.pdf"
    out = _chromium(tmp, "--no-pdf-header-footer", "--generate-pdf-document-outline",
                    f"--print-to-pdf={pdf}", path.as_uri())
    assert pdf.exists() and pdf.stat().st_size > 50_000, out.stderr[-2000:]
    data = pdf.read_bytes()
    pages = len(re.findall(rb"/Type\s*/Page\b", data))
    assert pages >= 8, pages
    outline = _pdf_outline(data)
    sections = re.findall(r"<h2>(.*?)</h2>", path.read_text(encoding="utf-8"))
    assert len(sections) >= 11, sections  # answer, bridge, ... sources, manifest
    import html as html_mod

    for title in sections:
        assert html_mod.unescape(title) in outline, (title, outline)


def test_every_cited_source_resolves_to_a_linked_row(page):
    """Each fact id the scenario cites is a row of the appendix with its value, date and link."""
    import json

    from simulator.scenario.facts import resolve

    tmp, path = page
    text = path.read_text(encoding="utf-8")
    cited = set()
    for a in json.loads(_memo_cube(paths=200).attrs["assumptions_json"]):
        cited |= {f.id for f in resolve(a["source"] or "").facts}
    assert len(cited) > 50
    for fid in cited:
        row = re.search(rf'<tr id="src-{re.escape(fid)}">(.*?)</tr>', text, re.S)
        assert row, fid
        if fid.startswith(("N-", "C-", "H-", "V-")) and "domain-facts.md" not in row.group(1):
            assert re.search(r'<a class="url" href="https?://', row.group(1)), (fid, row.group(1))


def _console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines()
            if re.search(r"Uncaught|:CONSOLE[(:]\d+.*\b[Ee]rror\b|Refused to|net::ERR_", line)]


def test_error_detector_catches_a_script_error(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><p>x</p><script>undefinedFn()</script></body></html>")
    out = _chromium(tmp_path, "--dump-dom", bad.as_uri())
    assert any("undefinedFn" in line for line in _console_errors(out.stderr))


def test_dom_renders_all_charts(page):
    tmp, path = page
    out = _chromium(tmp, "--dump-dom", path.as_uri())
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.count("<svg") == 12
    assert out.stdout.count("<figcaption>") == 12
    assert "Fair value $" in out.stdout and "pricing measure" in out.stdout
    assert _console_errors(out.stderr) == []


def test_screenshot_chart_regions_are_not_blank(page):
    import matplotlib.image as mpimg
    tmp, path = page
    shot = tmp / "shot.png"
    out = _chromium(tmp, f"--screenshot={shot}", "--window-size=1280,4000", path.as_uri())
    assert out.returncode == 0 and shot.exists(), out.stderr[-2000:]
    assert _console_errors(out.stderr) == []
    img = mpimg.imread(shot)
    assert img.shape[:2] == (4000, 1280)
    gray = img[..., :3].mean(axis=2)
    # The top 4000 px hold the headline, the value histogram, the assumptions table and the
    # bridge; every 400 px band must carry visible ink (text or chart), none a blank page.
    bands = gray.reshape(10, 400, 1280)
    ink = (bands < 0.85).mean(axis=(1, 2))
    assert np.all(ink > 0.005), ink
    assert np.all(bands.std(axis=(1, 2)) > 0.02)
    # The 12-month histogram (below the title, the headline, the key figures and the note on
    # the two measures, within the first 1,400 px) is dense with bars: well above text density.
    dense = max((gray[top:top + 290, 260:800] < 0.85).mean() for top in range(300, 1100, 20))
    assert dense > 0.1, dense
