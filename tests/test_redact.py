"""Credentials never reach a results file: redact_config on session configs."""

from __future__ import annotations

import copy
from types import MappingProxyType

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.measure.harness_config import DEFAULT_SESSION_CONFIG
from bench.record.redact import MASK, is_secret_key, redact_config

CUSTOM_PROXY = {
    "session": {
        "proxy": {
            "type": "custom",
            "server": "https://proxy.example.com:443",
            "username": "u",
            "password": "p",
            "active": True,
        }
    }
}


def test_custom_proxy_credentials_are_masked():
    original = copy.deepcopy(CUSTOM_PROXY)
    redacted = redact_config(CUSTOM_PROXY)
    assert redacted == {
        "session": {
            "proxy": {
                "type": "custom",
                "server": "https://proxy.example.com:443",
                "username": MASK,
                "password": MASK,
                "active": True,
            }
        }
    }
    assert original == CUSTOM_PROXY  # a copy, not an edit
    assert redacted["session"] is not CUSTOM_PROXY["session"]


def test_custom_proxy_is_recognised_outside_a_proxy_key():
    config = {"proxies": [{"type": "custom", "server": "s", "username": "u", "password": "p"}]}
    assert redact_config(config)["proxies"][0]["username"] == MASK
    other = {"fallback": {"type": "custom", "server": "s", "username": "u"}}
    assert redact_config(other)["fallback"]["username"] == MASK


def test_user_info_in_urls_is_masked():
    config = {"session": {"proxy": {"server": "http://alice:s3cret@proxy.example:8080/x"}}}
    assert redact_config(config)["session"]["proxy"]["server"] == "http://***@proxy.example:8080/x"
    assert redact_config({"url": "https://example.com/a@b"}) == {"url": "https://example.com/a@b"}


def test_secret_looking_keys_are_masked_wherever_they_are():
    config = {
        "api_key": "k1",
        "apiKey": "k2",
        "x-api-key": "k3",
        "headers": {"Authorization": "Bearer t", "anchor-api-key": "k4", "Accept": "json"},
        "integrations": [{"token": "t1", "access_token": "t2", "client_secret": "c"}],
        "secret_values": {"LOGIN": "x"},
        "private_key": "-----BEGIN-----",
        "cookies": [{"name": "sid", "value": "v"}],
        "key": "sk-live-abcdef",
    }
    redacted = redact_config(config)
    dumped = orjson.dumps(redacted).decode()
    for secret in ("k1", "k2", "k3", "k4", "Bearer", "t1", "t2", '"c"', "BEGIN", "sid", "sk-live"):
        assert secret not in dumped
    assert redacted["headers"]["Accept"] == "json"
    assert redacted["secret_values"] == MASK


def test_name_value_pairs():
    headers = [
        {"name": "Authorization", "value": "Bearer abc"},
        {"key": "X-Api-Key", "value": "abc"},
        {"name": "X-Trace", "value": "keep-me"},
        {"key": "X-Trace", "value": "keep-me"},
    ]
    assert redact_config(headers) == [
        {"name": "Authorization", "value": MASK},
        {"key": "X-Api-Key", "value": MASK},
        {"name": "X-Trace", "value": "keep-me"},
        {"key": "X-Trace", "value": "keep-me"},
    ]


def test_what_is_not_a_credential_is_kept():
    assert redact_config(DEFAULT_SESSION_CONFIG) == DEFAULT_SESSION_CONFIG
    harmless = {
        "api_key_name": "ci",  # the display name of a key, per the API spec
        "max_tokens": 100,
        "sensitive_data_mask": True,
        "web_bot_auth": {"active": False},
        "tags": ["bench", "run-1"],
        "password": None,  # says it is unset; not a secret
        "secret": True,
    }
    assert redact_config(harmless) == harmless


def test_idempotent_and_json_shaped():
    config = MappingProxyType({"session": MappingProxyType(CUSTOM_PROXY["session"])})
    once = redact_config(config)
    assert type(once) is dict and type(once["session"]) is dict
    assert redact_config(once) == once
    assert redact_config(("a", {"token": 1})) == ("a", {"token": MASK})


def test_is_secret_key():
    for name in ("password", "Proxy-Password", "TOKEN", "apikey", "API_KEY", "cookie", "auth"):
        assert is_secret_key(name), name
    for name in ("key_name", "tokens", "server", "username", "author", "monkey"):
        assert not is_secret_key(name), name


json_leaves = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8)
json_trees = st.recursive(
    json_leaves,
    lambda kids: (
        st.lists(kids, max_size=3)
        | st.dictionaries(
            st.sampled_from(["a", "session", "proxy", "list", "value"]), kids, max_size=3
        )
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(json_trees, st.sampled_from(["password", "api_key", "token", "Authorization"]))
def test_planted_secrets_never_survive(tree, key):
    planted = {"outer": tree, "deep": [{"x": {key: "PLANTED-SECRET"}}]}
    assert "PLANTED-SECRET" not in orjson.dumps(redact_config(planted)).decode()
    assert redact_config(redact_config(planted)) == redact_config(planted)
