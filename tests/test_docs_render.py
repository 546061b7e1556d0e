"""The built docs read the same offline: formulas rendered, roles linked, the public API only.

Builds the site once with ``mkdocs build --strict`` (about 5 s) and opens pages in headless
chromium with every network request sent to a dead proxy, as a reader without a connection
would. Skipped where mkdocs (the ``docs`` extra) or chromium is missing.
"""

from __future__ import annotations

import html
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

DOCS_EXTRA = ("mkdocs", "mkdocstrings", "latex2mathml")
pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in DOCS_EXTRA), reason="docs extra not installed"
)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def visible_text(dom: str) -> str:
    """The text a reader sees: no scripts, styles, tags or attribute values."""
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.DOTALL | re.IGNORECASE)
    return html.unescape(re.sub(r"<[^>]+>", " ", dom))


def dump_dom(page: Path) -> str:
    """The page's DOM after chromium has loaded it (and run its scripts) with no network."""
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
         "--virtual-time-budget=3000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$|\$\\|\\(frac|sum|lVert|mathcal|sigma|phi)\b")


@needs_chromium
def test_conventions_formulas_render_offline(site):
    dom = dump_dom(site / "conventions" / "index.html")
    # every formula of the page became MathML (the page has 20 inline and 2 display formulas)
    assert len(re.findall(r"<math\b", dom)) >= 20
    assert len(re.findall(r'<math\b[^>]*display="block"', dom)) >= 2
    assert "<mfrac>" in dom
    text = visible_text(dom)
    assert "Prior ⇔ regularizer" in text
    leftovers = [text[max(m.start() - 40, 0):m.end() + 40] for m in RAW_TEX.finditer(text)]
    assert not leftovers, leftovers


def test_pages_need_no_network(site):
    # no renderer or font from a CDN: every script and stylesheet ships with the site
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        remote = re.findall(r'<(?:script|link)\b[^>]*(?:src|href)="(?:https?:)?//[^"]+"', text)
        assert not remote, (page, remote)
        assert "fonts.googleapis" not in text and "fonts.gstatic" not in text, page


def test_every_formula_is_mathml(site):
    for page in site.rglob("*.html"):
        text = visible_text(page.read_text(encoding="utf-8"))
        leftovers = [text[max(m.start() - 40, 0):m.end() + 40] for m in
                     re.finditer(r"\\\(|\\\[|\$\$", text)]
        # code samples may show TeX on purpose; none of the pages does today
        assert not leftovers, (page, leftovers)


def test_api_pages_link_roles_and_show_the_public_api(site):
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    pages = [api, *(p.read_text(encoding="utf-8") for p in (site / "methods").rglob("*.html"))]
    for text in pages:
        shown = visible_text(text)
        assert not re.search(r":(class|func|meth|mod|attr|data):", shown), \
            re.search(r".{40}:(class|func|meth|mod|attr|data):.{40}", shown)
        assert "(lambda" not in re.sub(r">>>.*", "", shown)  # signatures, not doctest code
    # the roles became links: MCDropout's docstring cites bayesreg.MAP
    dropout = (site / "methods" / "dropout" / "index.html").read_text(encoding="utf-8")
    assert re.search(r'<a class="autorefs[^"]*"[^>]*href="[^"]*map/#bayesreg\.MAP"', dropout)
    # the API page's table of contents holds public names only
    anchors = set(re.findall(r'href="#([^"]+)"', api))
    for internal in ("NegLogJoint", "Collector", "bucketed", "RatesState", "train_loop"):
        assert not any(a.endswith("." + internal) for a in anchors), internal
    assert {"bayesreg.Posterior", "bayesreg.Gaussian", "bayesreg.l2_strength"} <= anchors


def test_navigation_sections_and_guide(site):
    index = (site / "index.html").read_text(encoding="utf-8")
    for section in ("User guide", "Methods", "Teaching", "Development"):
        assert re.search(rf">\s*{section}\s*<", index), section
    guide = visible_text((site / "guide" / "index.html").read_text(encoding="utf-8"))
    assert "SGLD" in guide and "SWAG" in guide
