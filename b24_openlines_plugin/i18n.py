"""The plugin's words: gettext catalogs of its own (domain ``b24_openlines`` in ``locale/``),
English msgids, compiled to ``.mo`` and read with the standard library.

The hook contract carries every text in every language the host offers (``LocalizedText``), so
a message is translated into all of them at once: ``_`` and ``ngettext`` return a
``LocalizedText``. Values go into named placeholders (``%(domain)s``; ``%(num)d`` is the count
of ``ngettext``) after translating, each language's own; a value that is itself a
``LocalizedText`` (a field's label) is put in its own language.

``make messages`` extracts the messages into ``locale/b24_openlines.pot``, updates the Russian
and English catalogs and compiles the ``.mo`` files, which are committed and shipped with the
plugin (tests/test_i18n.py checks that they are complete and up to date), so the plugin needs no
build step and no Babel to run, and nothing of the host's catalogs.
"""

from __future__ import annotations

import gettext as stdlib_gettext
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Final, get_args

from hooks.models import Language, LocalizedText

__all__ = ["DOMAIN", "LANGUAGES", "LOCALE_DIR", "_", "fill", "join", "ngettext", "same"]

LOCALE_DIR: Final = Path(__file__).parent / "locale"
DOMAIN: Final = "b24_openlines"
LANGUAGES: Final[tuple[Language, ...]] = get_args(Language)

Value = str | int | LocalizedText


@cache
def translations(language: Language) -> stdlib_gettext.GNUTranslations:
    """The compiled catalog of ``language``; a missing one is an error, not English text."""
    found = stdlib_gettext.translation(DOMAIN, LOCALE_DIR, [language])
    assert isinstance(found, stdlib_gettext.GNUTranslations)
    return found


def _(message: str, **values: Value) -> LocalizedText:
    """``message`` in every language, its placeholders filled with ``values``."""
    return _each(lambda language: translations(language).gettext(message), values)


def ngettext(singular: str, plural: str, num: int, **values: Value) -> LocalizedText:
    """The form of ``num`` in every language (Russian has three), ``%(num)d`` filled too."""

    def translate(language: Language) -> str:
        return translations(language).ngettext(singular, plural, num)

    return _each(translate, {"num": num, **values})


def fill(text: LocalizedText, **values: Value) -> LocalizedText:
    """A translated text whose placeholders are filled later (a URL known only to the page)."""
    return _each(text.get, values)


def join(texts: Iterable[LocalizedText], separator: str = ", ") -> LocalizedText:
    """Texts one after another, each language with its own."""
    items = list(texts)
    return LocalizedText(
        ru=separator.join(text.ru for text in items), en=separator.join(text.en for text in items)
    )


def same(text: str) -> LocalizedText:
    """A text that is no message of ours (a name from the account, an id): every language's."""
    return LocalizedText(ru=text, en=text)


def _each(translate: Callable[[Language], str], values: Mapping[str, Value]) -> LocalizedText:
    def in_language(language: Language) -> str:
        text = translate(language)
        if not values:
            return text  # no placeholders to fill: a "%" is just a percent sign
        return text % {
            name: value.get(language) if isinstance(value, LocalizedText) else value
            for name, value in values.items()
        }

    return LocalizedText(ru=in_language("ru"), en=in_language("en"))
