"""The plugin's settings: one pydantic model is the form, the validation and the stored value.

``model`` holds the settings and their formats, ``validation`` the rules over the whole form and
the stored settings read back, ``view`` the settings page, ``texts`` every ru/en text of them.
"""

from b24_openlines_plugin.settings.model import (
    MASK,
    SECRET_KEYS,
    B24Settings,
    FormMeta,
    MessengerRow,
)
from b24_openlines_plugin.settings.validation import stored_settings
from b24_openlines_plugin.settings.view import SettingsHost, build_settings_view

__all__ = [
    "MASK",
    "SECRET_KEYS",
    "B24Settings",
    "FormMeta",
    "MessengerRow",
    "SettingsHost",
    "build_settings_view",
    "stored_settings",
]
