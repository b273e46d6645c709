"""Regression tests for what the fuzz targets found in berthd's request
parsing (docs/fuzzing.md), through the real daemon: each is named after the
attack it blocks.  Run against an ASan berthd they also fail on the memory
error itself (conftest collects sanitizer reports)."""

import json
import urllib.parse

from conftest import https_conn


def post(daemon, pki, path):
    c = https_conn(daemon, pki)
    try:
        c.request("POST", path, body=b"", headers={"Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def test_prune_unknown_filter_key_use_after_free(daemon, pki):
    """The error message used to read the filter key after the JSON holding
    it was freed: it must name the key, and the daemon must live on."""
    key = "k" * 40
    q = urllib.parse.quote(json.dumps({key: ["x"]}))
    status, body = post(daemon, pki, f"/v1.43/images/prune?filters={q}")
    assert status == 400, (status, body)
    assert json.loads(body)["message"] == f"invalid filter '{key}'", body
    status, body = post(daemon, pki, "/v1.43/images/prune?filters=" + urllib.parse.quote("[]"))
    assert status == 400 and b"invalid filters" in body, (status, body)
    c = https_conn(daemon, pki)
    try:
        c.request("GET", "/_ping")
        r = c.getresponse()
        assert r.status == 200 and r.read() == b"OK"
    finally:
        c.close()
