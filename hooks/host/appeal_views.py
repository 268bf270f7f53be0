"""Raw data → Appeals and goals: the filters of the page and its CSV, the names it shows, and the
numbers its chart draws. Shared by the page and the export, so the two never disagree."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Final
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.requests import Request

from hooks.errors import BadRequest
from hooks.host.account_time import day_after, day_start, local, shown
from hooks.host.i18n import N_, gettext
from hooks.host.params import query_number
from hooks.host.repository import AppealQuery
from hooks.models import Appeal, Catalog, Language, StoredAppeal, Utm

PAGE_SIZE: Final = 100
MAX_OFFSET: Final = 2**62
# The chart counts at most this many appeals of the filter (the newest): enough for months of a
# busy account, and a bound on what one page load reads.
CHART_LIMIT: Final = 20_000
UTM_TAGS: Final = tuple(Utm.model_fields)
NONE: Final = "—"  # no campaign or source (a dash in every language)
_CSV_HEADERS: Final = (
    N_("Time"),
    N_("Channel"),
    N_("Contact"),
    N_("Phones"),
    N_("E-mails"),
    N_("Campaign / source"),
    N_("Site"),
)
_CSV_LAST_HEADERS: Final = (N_("Employee"), N_("Lead / deal in Bitrix24"), N_("Chat text"))
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class AppealFilters:
    """What the page's form and the CSV's query choose: an integration and a range of days in
    the account's zone (both ends included), and the page of the list."""

    integration_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    page: int = 1

    @classmethod
    def of(cls, request: Request) -> AppealFilters:
        return cls(
            integration_id=query_number(request, "integration_id"),
            date_from=_day(request, "from"),
            date_to=_day(request, "to"),
            page=max(1, query_number(request, "page") or 1),
        )

    @property
    def offset(self) -> int:
        """Where the page starts; a page past any list starts past it, within 64 bits."""
        return min((self.page - 1) * PAGE_SIZE, MAX_OFFSET)

    def repository_filters(self, zone: ZoneInfo) -> AppealQuery:
        """The filters of ``Repository.list_appeals``/``count_appeals``."""
        return AppealQuery(
            integration_id=self.integration_id,
            created_from=day_start(self.date_from, zone) if self.date_from else None,
            created_before=day_after(self.date_to, zone) if self.date_to else None,
        )

    def query(self, **changes: Any) -> str:
        """The query string of these filters (with ``changes``), for links and the export."""
        chosen = replace(self, **changes)
        pairs = {
            "integration_id": chosen.integration_id,
            "from": chosen.date_from.isoformat() if chosen.date_from else None,
            "to": chosen.date_to.isoformat() if chosen.date_to else None,
            "page": chosen.page if chosen.page > 1 else None,
        }
        return urlencode({k: v for k, v in pairs.items() if v is not None})


def _day(request: Request, name: str) -> date | None:
    value = request.query_params.get(name) or ""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name} must be a date (YYYY-MM-DD)") from None


@dataclass(frozen=True)
class Names:
    """The catalog's names by id, and how an appeal's channel and attribution read."""

    catalog: Catalog
    language: Language

    def of(self, kind: str, item_id: int | None) -> str:
        if item_id is None:
            return ""
        items: Iterable[Any] = getattr(self.catalog, kind)
        return next((i.name for i in items if i.id == item_id), f"#{item_id}")

    def channel(self, appeal: Appeal) -> str:
        """The name the settings show; the code for an appeal written before appeals named
        their channel."""
        title = appeal.channel_title
        return title.get(self.language) if title else appeal.channel

    def campaign_or_source(self, appeal: Appeal) -> str:
        at = appeal.attribution
        if at.campaign_id is not None:
            return self.of("campaigns", at.campaign_id)
        if at.source_id is not None:
            return self.of("sources", at.source_id)
        return NONE


def chart_data(stored: Iterable[StoredAppeal], names: Names, zone: ZoneInfo) -> dict[str, Any]:
    """Appeals per day (the account's days, every day of the span, empty ones too), once by
    channel and once by campaign or source: what ``appeals-chart.js`` draws."""
    by: dict[str, defaultdict[str, Counter[date]]] = {
        "channel": defaultdict(Counter),
        "campaign": defaultdict(Counter),
    }
    days: set[date] = set()
    for item in stored:
        appeal = item.appeal
        day = local(appeal.created_at, zone).date()
        days.add(day)
        by["channel"][names.channel(appeal)][day] += 1
        by["campaign"][names.campaign_or_source(appeal)][day] += 1
    span = _span(days)
    return {
        "days": [day.isoformat() for day in span],
        **{
            kind: [
                {"label": label, "counts": [counts[day] for day in span]}
                for label, counts in sorted(series.items(), key=lambda s: -s[1].total())
            ]
            for kind, series in by.items()
        },
    }


def _span(days: set[date]) -> list[date]:
    if not days:
        return []
    first, last = min(days), max(days)
    return [date.fromordinal(n) for n in range(first.toordinal(), last.toordinal() + 1)]


def csv_text(
    stored: Iterable[StoredAppeal], names: Names, zone: ZoneInfo, language: Language
) -> str:
    """The appeals as CSV for Excel: a BOM (so it reads UTF-8), quoted where needed, and no
    cell that a spreadsheet would run as a formula."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(
        [gettext(h, language) for h in _CSV_HEADERS]
        + list(UTM_TAGS)
        + [gettext(h, language) for h in _CSV_LAST_HEADERS]
    )
    for item in stored:
        appeal = item.appeal
        utm = appeal.attribution.utm.model_dump()
        row = [
            shown(appeal.created_at, zone),
            names.channel(appeal),
            appeal.contact.name or "",
            ", ".join(appeal.contact.phones),
            ", ".join(appeal.contact.emails),
            names.campaign_or_source(appeal),
            names.of("sites", appeal.attribution.site_id),
            *(utm[tag] or "" for tag in UTM_TAGS),
            names.of("employees", appeal.employee_id),
            appeal.crm.url or "",
            appeal.text,
        ]
        writer.writerow([_cell(value) for value in row])
    return out.getvalue()


def _cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def utm_pairs(utm: Utm) -> list[tuple[str, str]]:
    """The tags an appeal has, in the usual order."""
    values: Mapping[str, str | None] = utm.model_dump()
    return [(tag, value) for tag in UTM_TAGS if (value := values[tag])]
