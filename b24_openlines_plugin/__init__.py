"""Bitrix24 Open Lines chats as appeals in "Raw data → Appeals and goals"."""

PLUGIN_NAME = "b24_openlines"
