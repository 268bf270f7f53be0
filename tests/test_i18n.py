"""The words of the host and of the plugin come from gettext catalogs of their own
(hooks/host/locale, b24_openlines_plugin/locale): complete in Russian and English, up to date
with the sources and compiled; the pages speak the host's language, and counts take their forms."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from b24_openlines_plugin import i18n as plugin_i18n
from b24_openlines_plugin.settings import texts
from hooks.host import i18n as host_i18n
from hooks.host.app import create_app
from hooks.host.i18n import LANGUAGES, ngettext
from hooks.host.inbox_view import error_reason
from hooks.host.state import HostConfig
from hooks.models import Language
from tests.conftest import PUBLIC_URL, RunningHost

ROOT = Path(__file__).resolve().parents[1]
REMAKE = "run `make messages` and translate what it adds"


class Domain(NamedTuple):
    """A gettext domain: its catalogs and the sources its messages are extracted from."""

    name: str
    locale_dir: Path
    sources: Path

    @property
    def pot(self) -> Path:
        return self.locale_dir / f"{self.name}.pot"

    def compiled(self, language: Language, suffix: str = "mo") -> Path:
        return self.locale_dir / language / "LC_MESSAGES" / f"{self.name}.{suffix}"


HOST = Domain(host_i18n.DOMAIN, host_i18n.LOCALE_DIR, ROOT / "hooks" / "host")
PLUGIN = Domain(plugin_i18n.DOMAIN, plugin_i18n.LOCALE_DIR, ROOT / "b24_openlines_plugin")
each_domain = pytest.mark.parametrize("domain", [HOST, PLUGIN], ids=["host", "plugin"])


def po(language: Language, domain: Domain = HOST) -> Catalog:
    with open(domain.compiled(language, "po"), "rb") as file:
        return read_po(file, locale=language)


def messages(catalog: Catalog) -> dict[object, Message]:
    return {_plain(message.id): message for message in catalog if message.id}


def _plain(value: object) -> object:
    """A plural's forms as a tuple (a .mo file reads them as a list)."""
    return tuple(value) if isinstance(value, list | tuple) else value


@each_domain
def test_every_message_has_a_russian_and_an_english_translation(domain: Domain) -> None:
    with open(domain.pot, "rb") as file:
        wanted = set(messages(read_po(file)))
    assert len(wanted) > 100
    for language in LANGUAGES:
        catalog = po(language, domain)
        found = messages(catalog)
        assert set(found) == wanted, f"{language}: {REMAKE}"
        forms = 3 if language == "ru" else 2
        assert catalog.num_plurals == forms
        for message in found.values():
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            assert all(strings) and not message.fuzzy, f"{language}: {message.id!r}"
            assert len(strings) == (forms if message.pluralizable else 1), message.id
        # A translation names the placeholders of its msgid (%(domain)s), no other.
        assert [(m.id, errors) for m, errors in catalog.check()] == [], language


@each_domain
def test_the_catalogs_hold_every_message_of_the_sources(domain: Domain, tmp_path: Path) -> None:
    """What `make messages` would extract now is what the domain's .pot holds."""
    extracted = tmp_path / domain.pot.name
    babel_cfg = str(ROOT / "babel.cfg")
    CommandLineInterface().run(
        ["pybabel", "-q", "extract", "-F", babel_cfg, "-o", str(extracted), str(domain.sources)]
    )
    with open(extracted, "rb") as now, open(domain.pot, "rb") as committed:
        assert set(messages(read_po(now))) == set(messages(read_po(committed))), REMAKE


@each_domain
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalogs_are_those_of_the_po_files(
    domain: Domain, language: Language
) -> None:
    """The host and the plugin read the committed .mo files: they hold what the .po files say."""
    with open(domain.compiled(language), "rb") as file:
        compiled = read_mo(file)
    in_mo = {key: _plain(m.string) for key, m in messages(compiled).items()}
    in_po = {key: _plain(m.string) for key, m in messages(po(language, domain)).items()}
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


def test_the_plugin_counts_days_in_every_language() -> None:
    """Russian shortens days to "дн." in each of its three forms; English says "1 day"."""
    assert [texts.import_days(n).ru for n in (1, 3, 5, 21)] == [
        "За 1 дн.",
        "За 3 дн.",
        "За 5 дн.",
        "За 21 дн.",
    ]
    assert [texts.import_days(n).en for n in (1, 7)] == ["The last 1 day", "The last 7 days"]
    importing = texts.importing(1, 2, 3)
    assert importing.ru == "Идёт загрузка чатов за 1 дн. до подключения: 2 из 3"
    assert importing.en == "Importing the chats of the 1 day before connecting: 2 of 3"


def test_the_plugin_fills_values_in_after_translating() -> None:
    """Each language gets its own words around the values, a label in its own language."""
    assert texts.fill_in([texts.CLIENT_ID.label, texts.PORTAL.label]).model_dump() == {
        "ru": "Заполните: Код приложения (client_id), Адрес портала Битрикс24",
        "en": "Fill in: Application ID (client_id), Bitrix24 portal address",
    }
    assert texts.connected("x.bitrix24.ru").ru == "Подключено к x.bitrix24.ru"


def test_the_plugin_needs_none_of_the_host_catalogs() -> None:
    """The plugin is a package of its own: its words load without the host."""
    code = (
        "import sys; from b24_openlines_plugin.settings import texts; "
        "assert texts.OFF.ru == 'Интеграция выключена', texts.OFF; "
        "assert not [m for m in sys.modules if m.startswith('hooks.host')], 'hooks.host loaded'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


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


@pytest.mark.anyio
async def test_an_error_page_without_a_translation_still_speaks_the_page_language(
    running_host: RunningHost,
) -> None:
    """A message made for the API (English) gets a Russian headline by its status on the page,
    with the text kept below it as the detail; a translated one is shown as it is."""
    odd = await running_host.client.get("/raw/appeals?from=xx")
    assert odd.status_code == 400
    assert '<p class="notice error">Запрос не принят: проверьте, что отправлено.</p>' in odd.text
    assert '<p class="help" id="error-detail">from must be a date (YYYY-MM-DD)</p>' in odd.text
    known = await running_host.client.get("/integrations/99/settings")
    assert known.status_code == 404 and "Такой интеграции нет" in known.text
    assert "error-detail" not in known.text
