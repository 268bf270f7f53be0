"""Property-based checks: whatever arrives, the settings normaliser and the session endpoint
answer with a clear error or a valid result — never a crash, never a write on bad input."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from b24_openlines_plugin import transcript
from b24_openlines_plugin.settings import B24Settings
from tests.test_settings import COMPLETE_SOURCE, render

SETTING_KEYS = [
    *list(COMPLETE_SOURCE),
    "campaign_id",
    "messenger_map",
    "site_domains",
    "tracker_getter",
    "plan",
    "nonsense",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=40),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(SETTING_KEYS), values, max_size=8))
def test_any_submission_gives_errors_or_valid_settings(changes: dict[str, Any]) -> None:
    submitted = {**COMPLETE_SOURCE, **changes}
    view = render(submitted)
    if view.store is None:
        assert view.errors, "an unsaved submission must say why"
    else:
        assert view.errors == {}
        B24Settings.model_validate(view.store.settings)  # what is stored reads back


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        scalars,
        lambda inner: st.dictionaries(st.text(max_size=12), inner, max_size=4),
        max_leaves=10,
    )
)
def test_any_json_shape_is_handled(submitted: Any) -> None:
    if not isinstance(submitted, dict):
        submitted = {"value": submitted}
    view = render(submitted)
    assert (view.store is None) == bool(view.errors)
    json.dumps(view.values, default=str)  # the page and the API can always show it


def full_bbcode_to_text(text: str) -> str:
    """``transcript.bbcode_to_text`` without its shortcut for text that has nothing to convert."""

    def link(match: re.Match[str]) -> str:
        target, label = match[1].strip(), match[2].strip()
        return target if not label or label == target else f"{label} ({target})"

    plain = transcript._URL.sub(link, text)
    plain = transcript._NAMED.sub(lambda m: m[2], plain)
    plain = transcript._BREAK.sub("\n", plain)
    plain = transcript._TAG.sub("", plain)
    return transcript._BLANKS.sub("\n\n", html.unescape(plain)).strip()


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.text(max_size=40),
        st.lists(
            st.sampled_from(["a", " ", "\n", "\t", "[b]", "[/b]", "[br]", "&amp;", "&", "[", "]"]),
            max_size=20,
        ).map("".join),
    )
)
def test_bbcode_shortcut_gives_what_the_full_conversion_gives(text: str) -> None:
    assert transcript.bbcode_to_text(text) == full_bbcode_to_text(text)
