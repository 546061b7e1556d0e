"""Griffe extension: Sphinx roles in docstrings become mkdocstrings cross-references.

The package's docstrings cite each other with Sphinx roles (``:class:`bayesreg.MAP```,
``:func:`~bayesreg.fit```, ``:meth:`Predictive.metrics```), which mkdocstrings would print as
literal text. Rewriting them here, when the docs are built, keeps the docstrings as they are (they
also read well in ``help()``) and turns each role into an autorefs link: the target is resolved
against the loaded package (as written, then relative to the object's class, module and package,
then under ``bayesreg``), and a target that no page renders (a private helper) is shown as plain
code, without a warning, because the reference is marked optional.

Dataclass fields with a ``default_factory`` show in signatures as ``(lambda: MAP(...))()``; the
extension shows the value the factory builds, ``MAP(...)``.
"""

from __future__ import annotations

import html
import re

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|obj|exc|const):`([~!]?)([^`<>]+?)`")
FACTORY = re.compile(r"^\(lambda:\s*(.*)\)\(\)$", re.DOTALL)


def _resolves(collection, path: str) -> bool:
    try:
        obj = collection.get_member(path)
        if obj.is_alias:
            obj.final_target  # noqa: B018 — raises when the alias points nowhere
        return True
    except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return False


def _candidates(obj: griffe.Object, target: str) -> list[str]:
    scopes = []
    node = obj
    while node is not None:  # the object itself, its class, its module, its packages
        scopes.append(node.path)
        node = node.parent
    out = [target] + [f"{scope}.{target}" for scope in scopes]
    root = obj.package.path
    if not target.startswith(root + "."):
        out.append(f"{root}.{target}")
    return out


def rewrite_roles(text: str, obj: griffe.Object, collection) -> str:
    """Replace each Sphinx role in ``text`` by an optional autorefs reference."""

    def repl(m: re.Match) -> str:
        tilde, target = m[1], m[2].strip().rstrip("()")
        shown = target.rsplit(".", 1)[-1] if tilde == "~" else m[2].strip()
        code = f"<code>{html.escape(shown)}</code>"
        path = next((c for c in _candidates(obj, target) if _resolves(collection, c)), None)
        if path is None:
            return f"`{shown}`"
        return f'<autoref identifier="{html.escape(path)}" optional>{code}</autoref>'

    return ROLE.sub(repl, text)


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles and ``default_factory`` defaults once a package is loaded."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs) -> None:
        collection = loader.modules_collection
        seen: set[int] = set()

        def visit(obj: griffe.Object) -> None:
            if id(obj) in seen:
                return
            seen.add(id(obj))
            if obj.docstring is not None and ":" in obj.docstring.value:
                obj.docstring.value = rewrite_roles(obj.docstring.value, obj, collection)
            for param in getattr(obj, "parameters", None) or ():
                if isinstance(param.default, str) and (m := FACTORY.match(param.default)):
                    param.default = m[1]
                elif param.default is not None and (m := FACTORY.match(str(param.default))):
                    param.default = m[1]
            for member in obj.members.values():
                if not member.is_alias:
                    visit(member)

        visit(pkg)
