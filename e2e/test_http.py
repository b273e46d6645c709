"""HTTP behaviour of berthd over mTLS, with Python's http.client and the
admin cert: Docker-shaped answers, 404/411/413 as JSON errors."""

import json

import pytest

from conftest import https_conn


def request(daemon, pki, method, path, body=None, headers=None):
    c = https_conn(daemon, pki)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        c.close()


def json_error(status, headers, body, want):
    assert status == want, (status, body[:300])
    assert "json" in headers.get("content-type", ""), headers
    js = json.loads(body)
    assert isinstance(js.get("message"), str) and js["message"], js
    return js


@pytest.mark.parametrize("path", ["/_ping", "/v1.43/_ping", "/v1.24/_ping"])
def test_ping(daemon, pki, path):
    status, headers, body = request(daemon, pki, "GET", path)
    assert status == 200, (status, body)
    assert body == b"OK", body
    assert headers.get("api-version") == "1.43", headers


def test_head_ping(daemon, pki):
    status, headers, body = request(daemon, pki, "HEAD", "/_ping")
    assert status == 200, status
    assert body == b""
    assert headers.get("api-version"), headers


@pytest.mark.parametrize("path", ["/version", "/v1.43/version"])
def test_version_shape(daemon, pki, path):
    status, headers, body = request(daemon, pki, "GET", path)
    assert status == 200, (status, body)
    assert "application/json" in headers.get("content-type", ""), headers
    js = json.loads(body)
    for key in ("Version", "ApiVersion", "MinAPIVersion", "Os", "Arch", "KernelVersion"):
        assert key in js, f"/version lacks {key}: {js}"
    assert js["ApiVersion"] == "1.43", js
    assert js["Os"] == "linux", js


@pytest.mark.parametrize("path", ["/info", "/v1.43/info"])
def test_info_shape(daemon, pki, path):
    status, _, body = request(daemon, pki, "GET", path)
    assert status == 200, (status, body)
    js = json.loads(body)
    for key in ("ID", "Name", "OSType", "Architecture", "NCPU", "MemTotal", "KernelVersion"):
        assert key in js, f"/info lacks {key}: {js}"
    assert js["OSType"] == "linux", js
    assert isinstance(js["NCPU"], int) and js["NCPU"] >= 1, js


@pytest.mark.parametrize("path", ["/no/such/route", "/v1.43/nope", "/_pingx"])
def test_unknown_route_404_json(daemon, pki, path):
    json_error(*request(daemon, pki, "GET", path), 404)


# The length checks apply to any routed request (unknown routes get 404 before
# a body is considered); /_ping is the route every build has.


def test_413_oversize_body(daemon, pki):
    """A huge Content-Length is refused before any body is read."""
    c = https_conn(daemon, pki)
    try:
        c.putrequest("GET", "/_ping")
        c.putheader("Content-Type", "application/json")
        c.putheader("Content-Length", str(1 << 40))
        c.endheaders()
        r = c.getresponse()
        json_error(r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read(), 413)
    finally:
        c.close()


def test_411_chunked_body(daemon, pki):
    """A body without Content-Length gets 411 (STACK.md: lws would hang or
    answer empty otherwise)."""
    c = https_conn(daemon, pki)
    try:
        c.putrequest("GET", "/_ping")
        c.putheader("Content-Type", "application/json")
        c.putheader("Transfer-Encoding", "chunked")
        c.endheaders()
        c.send(b"2\r\n{}\r\n0\r\n\r\n")
        r = c.getresponse()
        json_error(r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read(), 411)
    finally:
        c.close()


def test_keepalive_two_requests(daemon, pki):
    c = https_conn(daemon, pki)
    try:
        for path in ("/_ping", "/version"):
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            assert r.status == 200, path
    finally:
        c.close()
