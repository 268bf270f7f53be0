"""Everything Bitrix24: its wire formats, OAuth and the REST client."""
