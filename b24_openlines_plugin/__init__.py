"""Bitrix24 Open Lines chats as appeals in "Raw data → Appeals and goals"."""

PLUGIN_NAME = "b24_openlines"

# The scopes the client grants the local application (also listed in plugin.toml).
REQUIRED_SCOPES = ("crm", "imopenlines", "im", "contact_center")
