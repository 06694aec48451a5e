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


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    path = report.write_report(synthetic_cube(paths=2_000, months=120), tmp / "report.html")
    return tmp, path


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
    # The 12-month histogram (about 490-800 px, below the headline, the key figures and the
    # note on the two measures) is dense with bars: well above text density.
    assert (gray[500:790, 260:800] < 0.85).mean() > 0.1
