"""The host's own words: gettext catalogs in ``locale/`` (English msgids; Russian is the default
language of the pages), compiled to ``.mo`` and read with the standard library.

The sources are marked with ``gettext``/``ngettext`` here and ``_``/``ngettext``/``{% trans %}``
in the templates; ``N_`` marks a message that is translated later (a table of messages).
``make messages`` extracts them into ``locale/messages.pot``, updates the ``.po`` files and
compiles the ``.mo`` files, which are committed (tests/test_i18n.py checks that they are up to
date), so the host needs no build step and no Babel to run.

The plugin's words come over the hook contract as ``LocalizedText`` (``localized``).
"""

from __future__ import annotations

import gettext as stdlib_gettext
from functools import cache
from pathlib import Path
from typing import Final, get_args

from hooks.models import Language, LocalizedText

LOCALE_DIR: Final = Path(__file__).parent / "locale"
DOMAIN: Final = "messages"
LANGUAGES: Final[tuple[Language, ...]] = get_args(Language)


@cache
def translations(language: Language) -> stdlib_gettext.GNUTranslations:
    """The compiled catalog of ``language``; a missing one is an error, not English text."""
    found = stdlib_gettext.translation(DOMAIN, LOCALE_DIR, [language])
    assert isinstance(found, stdlib_gettext.GNUTranslations)
    return found


def gettext(message: str, language: Language) -> str:
    return translations(language).gettext(message)


def ngettext(singular: str, plural: str, n: int, language: Language) -> str:
    return translations(language).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark ``message`` for the catalogs without translating it (it is translated later)."""
    return message


def localized(text: LocalizedText | None, language: Language) -> str:
    return "" if text is None else text.get(language)
