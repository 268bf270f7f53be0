"""The host's words come from gettext catalogs (hooks/host/locale): complete in Russian and
English, up to date with the sources and compiled, and the pages speak the host's language."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from hooks.host.app import create_app
from hooks.host.i18n import LANGUAGES, LOCALE_DIR, ngettext
from hooks.host.inbox_view import error_reason
from hooks.host.state import HostConfig
from hooks.models import Language
from tests.conftest import PUBLIC_URL

ROOT = Path(__file__).resolve().parents[1]
POT = LOCALE_DIR / "messages.pot"
REMAKE = "run `make messages` and translate what it adds"


def po(language: Language) -> Catalog:
    with open(LOCALE_DIR / language / "LC_MESSAGES" / "messages.po", "rb") as file:
        return read_po(file, locale=language)


def messages(catalog: Catalog) -> dict[object, Message]:
    return {_plain(message.id): message for message in catalog if message.id}


def _plain(value: object) -> object:
    """A plural's forms as a tuple (a .mo file reads them as a list)."""
    return tuple(value) if isinstance(value, list | tuple) else value


def test_every_message_has_a_russian_and_an_english_translation() -> None:
    with open(POT, "rb") as file:
        wanted = set(messages(read_po(file)))
    assert len(wanted) > 100
    for language in LANGUAGES:
        catalog = po(language)
        found = messages(catalog)
        assert set(found) == wanted, f"{language}: {REMAKE}"
        forms = 3 if language == "ru" else 2
        assert catalog.num_plurals == forms
        for message in found.values():
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            assert all(strings) and not message.fuzzy, f"{language}: {message.id!r}"
            assert len(strings) == (forms if message.pluralizable else 1), message.id


def test_the_catalogs_hold_every_message_of_the_sources(tmp_path: Path) -> None:
    """What `make messages` would extract now is what messages.pot holds."""
    extracted = tmp_path / "messages.pot"
    babel_cfg, sources = str(ROOT / "babel.cfg"), str(ROOT / "hooks" / "host")
    CommandLineInterface().run(
        ["pybabel", "-q", "extract", "-F", babel_cfg, "-o", str(extracted), sources]
    )
    with open(extracted, "rb") as now, open(POT, "rb") as committed:
        assert set(messages(read_po(now))) == set(messages(read_po(committed))), REMAKE


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalogs_are_those_of_the_po_files(language: Language) -> None:
    """The host reads the committed .mo files: they hold what the .po files say."""
    with open(LOCALE_DIR / language / "LC_MESSAGES" / "messages.mo", "rb") as file:
        compiled = read_mo(file)
    in_mo = {key: _plain(m.string) for key, m in messages(compiled).items()}
    in_po = {key: _plain(m.string) for key, m in messages(po(language)).items()}
    assert in_mo == in_po, REMAKE


def test_russian_counts_take_their_three_forms() -> None:
    def gave_up(n: int) -> str:
        return error_reason(f"gave up after {n} attempts: internal error: x", "ru").text

    assert gave_up(1).startswith("Не удалось за 1 попытку.")
    assert gave_up(3).startswith("Не удалось за 3 попытки.")
    assert gave_up(5).startswith("Не удалось за 5 попыток.")
    assert gave_up(21).startswith("Не удалось за 21 попытку.")
    assert gave_up(11).startswith("Не удалось за 11 попыток.")
    english = "Gave up after %(num)d attempt.", "Gave up after %(num)d attempts."
    assert [ngettext(*english, n, "en") % {"num": n} for n in (1, 2)] == [
        "Gave up after 1 attempt.",
        "Gave up after 2 attempts.",
    ]


PAGES = ("/", "/integrations/1/settings?saved=1", "/integrations/1/delete", "/raw/appeals")
PAGES += ("/inbox", "/integrations/404/settings")
EXPECTED: dict[Language, list[str]] = {
    "ru": [
        ">Интеграции</a>",
        "Настройки сохранены.",
        'data-copied="Скопировано"',
        ">Удалить интеграцию<",
        "Обращений пока нет.",
        ">Все</a>",
        "Такой интеграции нет",
    ],
    "en": [
        ">Integrations</a>",
        "Settings saved.",
        'data-copied="Copied"',
        ">Delete the integration<",
        "No appeals yet.",
        ">All</a>",
        "No such integration",
    ],
}


@pytest.mark.anyio
@pytest.mark.parametrize("language", LANGUAGES)
async def test_the_pages_speak_the_host_language(
    host_config: HostConfig, language: Language
) -> None:
    other: Language = "en" if language == "ru" else "ru"
    theirs = {m.id: m.string for m in messages(po(other)).values() if isinstance(m.id, str)}
    ours = {m.id: m.string for m in messages(po(language)).values() if isinstance(m.id, str)}
    foreign = {theirs[key] for key in theirs if theirs[key] != ours[key]}
    app = create_app(replace(host_config, language=language))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            await client.post("/api/integrations", json={"plugin": "b24_openlines", "name": "x"})
            shown = [(await client.get(path)).text for path in PAGES]
    html = "\n".join(shown)
    assert f'<html lang="{language}">' in shown[0]
    for text in EXPECTED[language]:
        assert text in html
    # No whole text of the host in the other language (an element's text, an attribute's).
    attributes = ("aria-label", "placeholder", "title", "data-copied")
    leaked = [
        t
        for t in foreign
        if f">{t}<" in html or any(f'{name}="{t}"' in html for name in attributes)
    ]
    assert leaked == []
