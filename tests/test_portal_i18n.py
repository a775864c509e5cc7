"""The portal's Spanish catalog covers every string the code and templates mark, with the same placeholders;
the training screens are what the firmware shows today; the companion never imports the simulator."""

import io
import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "companion" / "app"
PO = APP / "i18n" / "locales" / "es" / "LC_MESSAGES" / "messages.po"
METHODS = [("**/templates/**.html", "jinja2"), ("**/templates/**.txt", "jinja2"), ("**.py", "python")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"},
           "**/templates/**.txt": {"extensions": "jinja2.ext.i18n"}}


def _marked():
    ids = set()
    for _file, _line, msg, _comments, _ctx in extract_from_dir(
            str(APP), METHODS, keywords={"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)},
            options_map=OPTIONS):
        ids.add(msg if isinstance(msg, str) else msg[0])
    return ids


def test_every_marked_string_has_a_spanish_translation():
    """Nothing a page, an email or a notification says is left in English in Spanish."""
    catalog = read_po(io.BytesIO(PO.read_bytes()), locale="es")
    translated = {}
    for m in catalog:
        if m.id:
            key = m.id if isinstance(m.id, str) else m.id[0]
            translated[key] = (m.string if isinstance(m.string, str) else m.string[0], m.fuzzy)
    marked = _marked()
    assert len(marked) > 200
    missing = sorted(i for i in marked if not translated.get(i, ("", False))[0] or translated[i][1])
    assert missing == []


def test_translations_keep_the_placeholders():
    """Each translation uses exactly the placeholders of its English original."""
    catalog = read_po(io.BytesIO(PO.read_bytes()), locale="es")
    ph = re.compile(r"%\((\w+)\)[sd]")
    for m in catalog:
        if not m.id:
            continue
        ids = [m.id] if isinstance(m.id, str) else list(m.id)
        strings = [m.string] if isinstance(m.string, str) else list(m.string)
        for s in strings:
            assert set(ph.findall(s)) <= set().union(*(ph.findall(i) for i in ids)), m.id
            assert set(ph.findall(ids[0])) <= set(ph.findall(s)) | {"num"}, m.id


def test_training_screens_are_the_firmwares_and_their_captions_are_translatable():
    """host_sim/training.py, run now, writes exactly the committed training.json; every caption is marked."""
    import json

    import host_sim  # noqa: F401
    from companion.app.portal.help import TRAINING, TRAINING_CAPTIONS
    from host_sim import training

    text = json.dumps(training.record(), indent=1, ensure_ascii=False) + "\n"
    assert TRAINING.read_text() == text
    data = json.loads(text)
    captions = {s["say"] for seq in data.values() for s in seq["steps"] if s["say"]}
    assert captions == set(TRAINING_CAPTIONS)
    assert any(s["lines"][0] == "ENTER CODE" and s["button"] == "RIGHT" for s in data["unlock_code"]["steps"])
    assert any(s["lines"][0] == "BLOW" for s in data["breath_test"]["steps"])


def test_the_portal_does_not_import_the_simulator():
    """No module of the portal imports host_sim (it reads the recorded JSON)."""
    files = [p for d in ("accounts", "notifications", "portal", "web", "i18n") for p in (APP / d).rglob("*.py")]
    files.append(APP / "api" / "routes" / "portal.py")
    assert len(files) > 10
    offenders = [str(p) for p in files if re.search(r"^\s*(from|import)\s+host_sim", p.read_text(), re.M)]
    assert offenders == []


POT = APP / "i18n" / "messages.pot"


def _make_extract_args():
    """The options `make portal-messages` passes to `pybabel extract` (read from the Makefile, so the test
    extracts exactly as the target does), without the output file and the input folder."""
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    line = next(x for x in text.splitlines() if "pybabel extract" in x)
    args = line.split("pybabel extract", 1)[1].split()
    out = args.index("-o")
    return args[:out] + args[out + 2:-1]  # drop "-o FILE" and the trailing "."


def _extract(tmp_path):
    """The message ids `make portal-messages` would extract now, into a temporary .pot."""
    from babel.messages.frontend import CommandLineInterface

    target = tmp_path / "messages.pot"
    args = _make_extract_args()
    args = [a if a != "companion/app/i18n/babel.cfg" else str(APP / "i18n" / "babel.cfg") for a in args]
    CommandLineInterface().run(["pybabel", "-q", "extract", *args, "-o", str(target), str(ROOT)])
    return _ids(target)


def _ids(path):
    """The message ids of a .pot or .po file (the header's empty id left out)."""
    catalog = read_po(io.BytesIO(path.read_bytes()))
    return {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}


def _untranslated(path):
    """The ids of a .po with an empty or fuzzy translation (any form of a plural)."""
    catalog = read_po(io.BytesIO(path.read_bytes()), locale="es")
    out = []
    for m in catalog:
        if not m.id:
            continue
        strings = [m.string] if isinstance(m.string, str) else list(m.string)
        if m.fuzzy or not all(s.strip() for s in strings):
            out.append(m.id if isinstance(m.id, str) else m.id[0])
    return sorted(out)


def test_the_catalogs_are_in_sync_with_the_code_and_templates(tmp_path):
    """Extracted as `make portal-messages` does, the strings marked in the code and templates are exactly the
    committed messages.pot's and the Spanish catalog's (nothing missing, nothing obsolete): run
    `make portal-messages` and translate the new entries when this fails."""
    extracted = _extract(tmp_path)
    assert len(extracted) > 200
    for path in (POT, PO):
        ids = _ids(path)
        assert sorted(extracted - ids) == [], "not in %s: run make portal-messages" % path.name
        assert sorted(ids - extracted) == [], "obsolete in %s: run make portal-messages" % path.name


def test_every_entry_of_the_spanish_catalog_is_translated(tmp_path):
    """No empty or fuzzy translation in the Spanish catalog (and the check sees one: a copy with an entry
    emptied and another marked fuzzy)."""
    assert _untranslated(PO) == []
    text = PO.read_text()
    broken = text.replace('msgid "Record"\nmsgstr "Historial"', 'msgid "Record"\nmsgstr ""').replace(
        'msgid "Add"\nmsgstr', '#, fuzzy\nmsgid "Add"\nmsgstr')
    assert broken.count('msgstr ""') > text.count('msgstr ""')
    (tmp_path / "es.po").write_text(broken)
    assert _untranslated(tmp_path / "es.po") == ["Add", "Record"]


def test_strings_translated_at_compile_time_render_as_the_runtime_call_does():
    """i18n.ConstantGettext turns `_("text")` into the translation, a constant of each language's compiled
    template: the page must be the same as with `_` called at render time (markup kept, "%%" as "%", `_`
    with variables and an attribute named `_` left alone), and no `_` call with a plain string is left in the
    compiled dashboard."""
    import jinja2

    from companion.app import i18n
    from companion.app.web.session import TEMPLATES

    source = ('<p>{{ _("Next payment") }}|{{ _("Pay %%(amount)s now") }}|{{ _("Hello, %(name)s", name=n) }}|'
              '{{ f(_("Sign in"), 2) }}|{{ o._("x") }}|{% set t = _("Dashboard") %}{{ t }}|'
              '{{ _("Next payment") ~ "<" }}|{{ (_("Sign in")) }}|{{ _("<b>Bold</b> &amp;") }}</p>')
    values = {"n": "<Ana>", "f": lambda a, b: a + str(b), "o": {"_": lambda s: s.upper()}}
    for lang in i18n.LANGUAGES:
        env = i18n.environment(TEMPLATES, lang)
        plain = jinja2.Environment(autoescape=True, extensions=["jinja2.ext.i18n"])
        plain.globals.update(env.globals)
        assert env.from_string(source).render(values) == plain.from_string(source).render(values)
    es = i18n.environment(TEMPLATES, "es")
    assert "Próximo pago" in es.from_string('{{ _("Next payment") }}').render()
    code = es.compile(es.loader.get_source(es, "dashboard.html")[0], raw=True)
    assert not re.search(r"l_0__\)?, '[^']*'\)", code), "a `_` call with a plain string is left"
    assert "Próximo pago" in code


def test_a_template_that_binds_its_own_underscore_is_not_translated_at_compile_time():
    """`_` set, a macro's parameter or a loop's variable: `_("text")` there calls that, as at render time."""
    import jinja2

    from companion.app import i18n
    from companion.app.web.session import TEMPLATES

    values = {"f": lambda s: "called " + s}
    for source in ('{% macro m(_) %}{{ _("Next payment") }}{% endmacro %}{{ m(f) }}',
                   '{% set _ = f %}{{ _("Next payment") }}',
                   '{% for _ in [f] %}{{ _("Next payment") }}{% endfor %}'):
        for lang in i18n.LANGUAGES:
            env = i18n.environment(TEMPLATES, lang)
            plain = jinja2.Environment(autoescape=True, extensions=["jinja2.ext.i18n"])
            plain.globals.update(env.globals)
            assert env.from_string(source).render(values) == plain.from_string(source).render(values) \
                == "called Next payment", source


def test_plain_functions_are_called_as_jinja_calls_them():
    """i18n.PlainCallContext calls a plain function straight away and leaves the rest to Jinja: for plain
    functions (with positional, keyword and no arguments, inside loops and blocks, one raising StopIteration),
    functions marked pass_context / pass_eval_context / pass_environment, a callable object whose __call__ is
    marked, methods, builtins and an undefined name, the page is what Jinja's own Context gives."""
    import jinja2
    import jinja2.runtime

    from companion.app import i18n
    from companion.app.web.session import TEMPLATES

    def plain(a, b=1, **kw):
        return "plain %s %s %s" % (a, b, sorted(kw.items()))

    def stops():
        raise StopIteration

    @jinja2.pass_context
    def ctx(context, a):
        return "ctx %s %s" % (a, context.get("x"))

    @jinja2.pass_eval_context
    def evalctx(eval_ctx, a):
        return "eval %s %s" % (a, eval_ctx.autoescape)

    @jinja2.pass_environment
    def envfn(environment, a):
        return "env %s %s" % (a, environment.autoescape)

    class Callable:
        @jinja2.pass_context
        def __call__(self, context, a):
            return "obj %s %s" % (a, context.get("x"))

    source = ('{{ plain(1) }}|{{ plain(1, 2, k="<v>") }}|{{ noargs() }}|{{ stops() }}|{{ ctx("a") }}|'
              '{{ evalctx("b") }}|{{ envfn("c") }}|{{ obj("d") }}|{{ "x,y".split(",") }}|{{ len("abc") }}|'
              '{% for i in [1, 2] %}{% set x = i %}{{ plain(i, x) }}{{ ctx(loop.index) }}{% endfor %}|'
              '{% block b %}{{ plain("in block") }}{{ ctx("in block") }}{% endblock %}')
    values = {"plain": plain, "noargs": lambda: "none", "stops": stops, "ctx": ctx, "evalctx": evalctx,
              "envfn": envfn, "obj": Callable(), "len": len, "x": "<X>"}
    for lang in i18n.LANGUAGES:
        env = i18n.environment(TEMPLATES, lang)
        assert env.context_class is i18n.PlainCallContext
        fast = env.from_string(source).render(values)
        env.context_class = jinja2.runtime.Context
        try:
            slow = env.from_string(source).render(values)
        finally:
            env.context_class = i18n.PlainCallContext
        assert fast == slow
        assert "plain 1 2 [(&#39;k&#39;, &#39;&lt;v&gt;&#39;)]" in fast and "ctx a &lt;X&gt;" in fast
    try:
        i18n.environment(TEMPLATES, "en").from_string("{{ missing() }}").render()
        raise AssertionError("an undefined name called renders nothing")
    except jinja2.UndefinedError:
        pass


def test_the_language_forms_back_path_is_the_requests_url_path():
    """Visitor.path (the language form's `back`) is what request.url.path gives, escaped characters and all."""
    from starlette.requests import Request

    from companion.app.web.session import Visitor

    for path in ("/portal/dashboard", "/portal/a?b", "/portal/x#y", "/portal/back\\slash", "/portal/é ü"):
        request = Request({"type": "http", "method": "GET", "scheme": "http", "path": path, "raw_path": b"",
                           "query_string": b"q=1", "root_path": "", "headers": [(b"host", b"example.org")],
                           "server": ("example.org", 80)})
        v = Visitor(request, None, None, None, "en", "")  # type: ignore[arg-type]
        assert v.path == request.url.path, path
