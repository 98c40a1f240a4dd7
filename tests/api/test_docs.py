"""Issue 10 item 7: /docs and /redoc render on a closed network (every asset they load is
served by the API itself); item 8: the dashboard takes the token from a sign-in form, not
the URL."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.api.conftest import LiveApi


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "spec-url", "data", "poster", "srcset") and value:
                self.urls.append(value)
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def _page_urls(html: str) -> list[str]:
    parser = _Assets()
    parser.feed(html)
    # URLs named inside inline scripts (Swagger UI's `url: '/openapi.json'`, any https://...)
    inline = [m for s in parser.scripts for m in re.findall(r"""["'`]((?:https?:)?//[^"'`\s]+|/[^"'`\s]*)["'`]""", s)]
    return parser.urls + inline


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_load_only_same_origin_assets(live_api: LiveApi, page: str) -> None:
    with httpx.Client(base_url=live_api.url) as c:
        r = c.get(page)
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]
        urls = _page_urls(r.text)
        assert any(u.endswith(".js") for u in urls), urls
        assert any("openapi.json" in u for u in urls), urls
        origin = urlsplit(live_api.url).netloc
        for u in urls:
            full = urljoin(live_api.url + page, u)
            assert urlsplit(full).netloc == origin, f"{page} loads {u} from another origin"
            assert c.get(full).status_code == 200, u
        assert "fonts.googleapis" not in r.text and "cdn.jsdelivr" not in r.text


def test_docs_assets_are_whitelisted(live_api: LiveApi) -> None:
    with httpx.Client(base_url=live_api.url) as c:
        assert c.get("/docs/assets/swagger-ui.css").headers["content-type"].startswith("text/css")
        for bad in ("/docs/assets/..%2Fdocs.py", "/docs/assets/__init__.py", "/docs/assets/LICENSE-redoc"):
            assert c.get(bad).status_code == 404


def test_console_signs_in_with_a_form_not_the_url(live_api: LiveApi) -> None:
    """The page itself is tested in a browser (tests/console); here: what is served, where,
    with which headers, and that no script reads a token from the URL or asks by prompt()."""
    with httpx.Client(base_url=live_api.url) as c:
        assert c.get("/").headers["location"] == "/console/"
        page = c.get("/console/")
        scripts = "".join(c.get(f"/console/js/{name}.js").text for name in ("api", "console", "feed", "appeal"))
        assert c.get("/console/js/../../api/app.py").status_code == 404
    html = page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<form id="signin"' in html and 'type="password"' in html
    assert "sessionStorage.setItem(KEY" in scripts
    assert "location.hash" not in scripts and "prompt(" not in scripts and "?token=" not in scripts
    assert not re.search(r"get\([\"']token[\"']\)", scripts)


def test_openapi_declares_the_error_responses_of_each_route(live_api: LiveApi) -> None:
    with httpx.Client(base_url=live_api.url) as c:
        spec = c.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            codes = set(op["responses"])
            where = f"{method.upper()} {path}"
            if path == "/readyz":  # unauthenticated for probes; its 503 carries the readiness body, not a problem
                assert codes == {"200", "503"}, where
                assert list(op["responses"]["503"]["content"]) == ["application/json"], where
                continue
            if path != "/healthz":
                assert "401" in codes, where
            if path not in ("/healthz", "/metrics"):
                assert {"403", "422"} <= codes, where
            if "{" in path or method == "post":
                # creating subjects refers to nothing that could be missing
                assert "404" in codes or path in ("/subjects", "/subjects/import"), where
            if method == "post" and not path.endswith("/absences"):
                assert "409" in codes, where
            for code in codes - {"200", "201", "204"}:  # 204: no content (sign-out, password change)
                content = op["responses"][code]["content"]
                assert list(content) == ["application/problem+json"], (where, code)
