"""MkDocs hook: turn every TeX formula into MathML when the site is built.

pymdownx.arithmatex (generic mode) leaves ``\\( … \\)`` and ``\\[ … \\]`` spans for a JavaScript
renderer to typeset in the browser; loading that renderer from a CDN meant an offline or locally
built copy showed raw TeX. Browsers render MathML natively, so converting here (with the
pure-Python ``latex2mathml``) makes every page readable with no script and no network. A formula
the converter cannot read fails the build, naming the page and the TeX, instead of shipping raw TeX.
"""

from __future__ import annotations

import html
import re

from latex2mathml.converter import convert

# arithmatex's generic output; its TeX is HTML-escaped (``<`` → ``&lt;``).
_INLINE = re.compile(r'<span class="arithmatex">\\\((.*?)\\\)</span>', re.DOTALL)
_BLOCK = re.compile(r'<div class="arithmatex">\s*\\\[(.*?)\\\]\s*</div>', re.DOTALL)


def to_mathml(tex: str, display: str, where: str = "?") -> str:
    """MathML for one TeX formula, with the source kept in ``alttext`` for copying and readers.

    Examples
    --------
    >>> out = to_mathml("x^2", "inline")
    >>> out.startswith('<math alttext="x^2"'), "<msup><mi>x</mi><mn>2</mn></msup>" in out
    (True, True)
    """
    try:
        mathml = convert(tex.strip(), display=display)
    except Exception as exc:  # any converter error is a build error here, naming the page
        raise ValueError(f"{where}: cannot convert {tex.strip()!r} to MathML: {exc}") from exc
    alt = html.escape(" ".join(tex.split()), quote=True)
    return mathml.replace("<math ", f'<math alttext="{alt}" ', 1)


def render_math(page_html: str, where: str = "?") -> str:
    """Replace arithmatex's TeX spans and blocks in ``page_html`` by MathML."""

    def block(m: re.Match) -> str:
        return f'<div class="arithmatex">{to_mathml(html.unescape(m[1]), "block", where)}</div>'

    def inline(m: re.Match) -> str:
        return f'<span class="arithmatex">{to_mathml(html.unescape(m[1]), "inline", where)}</span>'

    return _INLINE.sub(inline, _BLOCK.sub(block, page_html))


def on_page_content(html_text, page, config, files):  # MkDocs' hook signature
    return render_math(html_text, where=page.file.src_uri)
