"""English and Spanish: gettext catalogs (`locales/<lang>/LC_MESSAGES/messages.po`), compiled in memory when
first used (no .mo files in the repository, nothing to build), and one Jinja2 environment per language.

Add a string: mark it `{{ _("...") }}` in a template (or `_()` in code), run `make portal-messages` to
extract it into `messages.pot` and merge it into each catalog, then translate the new entry in the .po file.
"""

import gettext
import io
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from types import FunctionType
from typing import Any

import jinja2
import jinja2.ext
import jinja2.runtime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from markupsafe import Markup

LOCALES = Path(__file__).resolve().parent / "locales"
LANGUAGES = ("en", "es")
DEFAULT = "en"


@lru_cache
def translations(lang: str) -> gettext.NullTranslations:
    """The catalog for lang (English is the source language: no catalog)."""
    if lang not in LANGUAGES or lang == DEFAULT:
        return gettext.NullTranslations()
    with open(LOCALES / lang / "LC_MESSAGES" / "messages.po", "rb") as f:
        catalog = read_po(f, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def gettext_for(lang: str) -> "gettext.NullTranslations":
    """Translations for lang (unknown languages fall back to English)."""
    return translations(lang if lang in LANGUAGES else DEFAULT)


def pick_language(accept_language: str | None) -> str:
    """The first supported language of an Accept-Language header (English when none)."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return DEFAULT


@lru_cache
def environment(searchpath: str, lang: str) -> jinja2.Environment:
    """A Jinja2 environment over searchpath with lang's catalog installed (autoescaping on)."""
    tr = gettext_for(lang)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(searchpath), autoescape=True, auto_reload=False,
                             extensions=["jinja2.ext.i18n", ConstantGettext], trim_blocks=True,
                             lstrip_blocks=True)
    env.extend(constant_gettext=_fast_gettext(tr))
    env.install_gettext_translations(tr, newstyle=True)  # type: ignore[attr-defined]
    # the extension's newstyle `_`, `gettext` and `ngettext` go through three context calls each; these do
    # the same (translate, mark safe, then %-format with the escaped variables) in one, the plain strings
    # looked up once: a page has dozens of them
    env.globals.update(_=_fast_gettext(tr), gettext=_fast_gettext(tr), ngettext=_fast_ngettext(tr))
    env.globals["lang"] = lang
    env.context_class = PlainCallContext
    return env


class PlainCallContext(jinja2.runtime.Context):
    """A template's context that calls a plain Python function (one not marked pass_context, pass_eval_context
    or pass_environment) straight away. Jinja's Context.call looks for those marks on every call, three attribute
    lookups and a dict pop or two (a dashboard makes 26 calls: `_` with variables, date, when, money): the same
    call, a tenth of the page's render. Anything else (a marked function, a method, a callable object, an
    undefined name) goes through Jinja's own call. As Jinja's, a StopIteration from the function is undefined."""

    def call(__self, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 (Jinja's own signature)
        if type(__obj) is not FunctionType or "jinja_pass_arg" in __obj.__dict__:
            return super().call(__obj, *args, **kwargs)
        kwargs.pop("_block_vars", None)
        kwargs.pop("_loop_vars", None)
        try:
            return __obj(*args, **kwargs)
        except StopIteration:
            return __self.environment.undefined("value was undefined because a callable raised a StopIteration"
                                                " exception")


class ConstantGettext(jinja2.ext.Extension):
    """`_("text")` with no variables, translated when the template is compiled: each language has its own
    environment (and so its own compiled templates), so the translation is a constant of the template, joined
    into the page's text at compile time, instead of a call per render (a page has dozens: a tenth of the
    dashboard's CPU). The constant is what `_` returns at render time (the translation marked safe and
    %-formatted, "%%" becoming "%"), so the page is the same. `_` with variables stays a call. A template that
    names `_` other than to call it (`{% set _ = ... %}`, a macro's or a loop's `_`) is left as written: there
    `_("text")` may call something else. (`_` given in a render's variables is not seen: the pages never do.)"""

    def filter_stream(self, stream: jinja2.lexer.TokenStream) -> list[jinja2.lexer.Token]:
        translate = self.environment.constant_gettext  # type: ignore[attr-defined]
        tokens = list(stream)
        if any(t.type == "name" and t.value == "_" and not (i > 0 and tokens[i - 1].type == "dot")
               and (i + 1 == len(tokens) or tokens[i + 1].type != "lparen") for i, t in enumerate(tokens)):
            return tokens  # `_` bound in the template
        out: list[jinja2.lexer.Token] = []
        i = 0
        while i < len(tokens):
            t = tokens[i]
            if (t.type == "name" and t.value == "_" and i + 3 < len(tokens) and tokens[i + 1].type == "lparen"
                    and tokens[i + 2].type == "string" and tokens[i + 3].type == "rparen"
                    and not (out and out[-1].type == "dot")):
                text = translate(tokens[i + 2].value)
                out += [jinja2.lexer.Token(t.lineno, "lparen", "("),
                        jinja2.lexer.Token(t.lineno, "string", str(text)),
                        jinja2.lexer.Token(t.lineno, "pipe", "|"), jinja2.lexer.Token(t.lineno, "name", "safe"),
                        jinja2.lexer.Token(t.lineno, "rparen", ")")]
                i += 4
                continue
            out.append(t)
            i += 1
        return out


def _fast_gettext(tr: gettext.NullTranslations) -> Callable[..., str]:
    done: dict[str, Markup] = {}

    def gettext(__string: str, **variables: Any) -> str:
        if variables:
            return Markup(tr.gettext(__string)) % variables
        rv = done.get(__string)
        if rv is None:
            rv = done[__string] = Markup(tr.gettext(__string)) % {}
        return rv

    return gettext


def _fast_ngettext(tr: gettext.NullTranslations) -> Callable[..., str]:
    def ngettext(__singular: str, __plural: str, __num: int, **variables: Any) -> str:
        variables.setdefault("num", __num)
        return Markup(tr.ngettext(__singular, __plural, __num)) % variables

    return ngettext
