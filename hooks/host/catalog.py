"""The account catalog: a demo one for a new host, or the client's own from a JSON file."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from hooks.models import Campaign, Catalog, Employee, Site, Source

DEMO_CATALOG = Catalog(
    employees=[
        Employee(id=1, name="Анна Смирнова"),
        Employee(id=2, name="Иван Петров"),
        Employee(id=3, name="Olga Ivanova"),
    ],
    sources=[
        Source(id=1, name="Яндекс Директ", utm_source="yandex"),
        Source(id=2, name="Google Ads", utm_source="google"),
        Source(id=3, name="ВКонтакте", utm_source="vk"),
        Source(id=4, name="Telegram", utm_source="telegram"),
        Source(id=5, name="Мессенджеры"),
        Source(id=6, name="Прямые заходы"),
    ],
    sites=[
        Site(id=1, name="Демо-сайт", domain="127.0.0.1"),
        Site(id=2, name="Магазин", domain="shop.example.ru"),
    ],
    campaigns=[
        Campaign(id=1, name="Весенняя распродажа", site_id=1, utm_campaign="spring_sale"),
        Campaign(id=2, name="Бренд", site_id=1, utm_campaign="brand"),
        Campaign(id=3, name="Мессенджеры по умолчанию", site_id=None),
    ],
)


class CatalogFileError(ValueError):
    pass


def load_catalog_file(path: Path) -> Catalog:
    """Read a catalog JSON file (the shape of ``GET /api/catalog``) with a clear error."""
    try:
        return Catalog.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise CatalogFileError(f"cannot read catalog file {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise CatalogFileError(f"catalog file {path} is not JSON: {exc}") from exc
    except ValidationError as exc:
        raise CatalogFileError(
            f"catalog file {path} does not match the catalog shape:\n{exc}"
        ) from exc
