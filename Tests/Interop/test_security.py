"""MLflow 3's security middleware, differential against a real `mlflow server` (the oracle) and in a real browser:
`Host` headers other than the server's are refused (DNS rebinding), cross-site writes are refused unless the origin is
allowed, allowed origins get CORS, and every answer carries X-Content-Type-Options and X-Frame-Options. Tally parts
from MLflow in four cases, asserted one by one below (docs/security.md)."""
import http.client
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from mlflow import MlflowClient

from conftest import MlflowServer, Server, free_port, refused_start, tally_serving

REFUSALS = ("Invalid Host header", "Cross-origin request blocked", "Disallowed CORS")


def probe(url, method, path, host=None, headers=None, body=None):
    """(status, lowercased headers, body text) of one request with exactly these headers (`host`: the Host header,
    default the URL's)."""
    netloc = url.split("//", 1)[1]
    name, port = netloc.rsplit(":", 1)
    c = http.client.HTTPConnection(name, int(port), timeout=30)
    c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    c.putheader("Host", host or netloc)
    for k, v in (headers or {}).items():
        c.putheader(k, v)
    data = body.encode() if body is not None else None
    if data is not None:
        c.putheader("Content-Length", str(len(data)))
    c.endheaders(data)
    r = c.getresponse()
    text = r.read().decode("utf-8", "replace")
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, text


def refused(answer):
    status, _, text = answer
    return status in (400, 403) and any(m in text for m in REFUSALS)


def cases():
    """Requests whose fate both servers must agree on: (name, method, path, Host, headers, body); `PORT` stands for
    the server's port, and a Host of `None` is the server's own address."""
    api = "/api/2.0/mlflow/experiments/search?max_results=1"
    create = "/api/2.0/mlflow/experiments/create"
    js = {"Content-Type": "application/json"}
    out = []
    for h in ["127.0.0.1:PORT", "localhost:PORT", "localhost", "[::1]:PORT", "10.1.2.3:80", "192.168.0.9:5000", "172.16.5.5",
              "172.31.0.1:5000", "172.15.0.1", "172.32.0.1", "evil.example", "evil.example:PORT", "8.8.8.8:80", "[2001:db8::1]:5000",
              "tally.example.com", "10.0.0.7", "app.notebooks.example", "10.0.0.attacker.example"]:
        out += [(f"GET api, Host {h}", "GET", api, h, {}, None), (f"GET /, Host {h}", "GET", "/", h, {}, None),
                (f"GET /health, Host {h}", "GET", "/health", h, {}, None)]
    for o in ["https://evil.example", "http://localhost:3000", "http://127.0.0.1:PORT", "http://[::1]:8080", "null", "https://localhost",
              "http://localhost.evil.example", "https://app.example.com", "https://x.notebooks.example", "https://notebooks.example"]:
        out += [(f"POST create, Origin {o}", "POST", create, None, {**js, "Origin": o}, json.dumps({"name": "x-" + o})),
                (f"GET api, Origin {o}", "GET", api, None, {"Origin": o}, None),
                (f"PUT artifact, Origin {o}", "PUT", "/api/2.0/mlflow-artifacts/artifacts/0/x.txt", None, {"Origin": o}, "x"),
                (f"preflight, Origin {o}", "OPTIONS", create, None, {"Origin": o, "Access-Control-Request-Method": "POST",
                                                                      "Access-Control-Request-Headers": "content-type"}, None)]
    # A rebinding page at a name that looks like a private address writes to its own origin.
    out.append(("POST create, rebinding name as its own origin", "POST", create, "10.0.0.attacker.example",
                {**js, "Origin": "http://10.0.0.attacker.example"}, json.dumps({"name": "rebound"})))
    return out


# A name that starts like a private address: MLflow's `10.*` (its default, and the `10.0.0.*` of the options here)
# matches it as text, so a rebinding page there is answered; Tally matches such patterns against addresses only.
ADDRESS_LOOKALIKE = {f"{k}, Host 10.0.0.attacker.example" for k in ("GET api", "GET /")}

# Where Tally parts from MLflow on purpose in these cases: `https://localhost` is a localhost origin to MLflow's
# write check but gets no CORS from it (its CORS patterns are http only); Tally treats it as localhost throughout.
LOCALHOST_OVER_HTTPS = {f"{k}, Origin https://localhost" for k in ("POST create", "GET api", "PUT artifact", "preflight")}
# And a pattern in --cors-allowed-origins: MLflow matches it with fnmatch to let writes through, but its CORS headers
# read it as a literal origin (Starlette) or a regular expression (Flask-CORS, where `https://*.x` also matches
# `https://x`), so the pages it lets write cannot read the answers. Tally reads it as the same pattern throughout.
PATTERN_ORIGIN = {f"{k}, Origin https://x.notebooks.example" for k in ("POST create", "GET api", "PUT artifact", "preflight")} | {
    "GET api, Origin https://notebooks.example"}


@pytest.mark.parametrize("options", [[], ["--allowed-hosts", "tally.example.com,10.0.0.*,127.0.0.1:*",
                                          "--cors-allowed-origins", "https://app.example.com,https://*.notebooks.example",
                                          "--x-frame-options", "DENY"]], ids=["defaults", "options"])
def test_refused_and_answered_as_mlflow_does(options):
    oracle = MlflowServer(*options)
    tally = Server(*options)
    try:
        disagreements = []
        for name, method, path, host, headers, body in cases():
            answers = {}
            for who, url in [("mlflow", oracle.url), ("tally", tally.url)]:
                port = url.rsplit(":", 1)[1]
                answers[who] = probe(url, method, path, host and host.replace("PORT", port),
                                     {k: v.replace("PORT", port) for k, v in headers.items()}, body)
            m, t = answers["mlflow"], answers["tally"]
            if refused(m) != refused(t):
                disagreements.append((name, f"mlflow {m[0]} {m[2][:80]!r}, tally {t[0]} {t[2][:80]!r}"))
            elif not refused(t) and "Origin" in headers and method != "OPTIONS":
                # An origin CORS allows gets it on both (its own name back); one it does not, on neither.
                cors = [a[1].get("access-control-allow-origin") for a in (m, t)]
                same = [c and c.replace(u.rsplit(":", 1)[1], "PORT") for c, u in zip(cors, (oracle.url, tally.url))]
                if same[0] != same[1]:
                    disagreements.append((name, f"CORS mlflow {cors[0]}, tally {cors[1]}"))
        expected = LOCALHOST_OVER_HTTPS | ADDRESS_LOOKALIKE | (PATTERN_ORIGIN if options else set())
        unexpected = [f"{n}: {d}" for n, d in disagreements if n not in expected]
        assert not unexpected, "\n".join(unexpected)
        assert {n for n, _ in disagreements} == expected, disagreements  # the divergences are still there
        # The headers of every answer, errors included.
        frame = "DENY" if options else "SAMEORIGIN"
        for url in (oracle.url, tally.url):
            for path in ("/", "/api/2.0/mlflow/experiments/search?max_results=1", "/api/2.0/mlflow/experiments/get?experiment_id=404"):
                _, h, _ = probe(url, "GET", path)
                assert h.get("x-content-type-options") == "nosniff" and h.get("x-frame-options") == frame, (url, path, h)
    finally:
        oracle.stop()
        tally.stop()


def test_where_tally_parts_from_mlflow():
    """Each divergence, with MLflow's answer beside Tally's so that a change in either shows."""
    oracle = MlflowServer()
    tally = Server()
    try:
        def both(method, path, host, headers=None, body=None):
            return [refused(probe(u, method, path, host, headers, body)) for u in (oracle.url, tally.url)]
        api = "/api/2.0/mlflow/experiments/search?max_results=1"
        # A name that only looks like a private address: MLflow's `10.*` lets a rebinding name through.
        assert both("GET", api, "10.attacker.example") == [False, True]
        assert both("GET", api, "192.168.attacker.example:5000") == [False, True]
        # Host names compare without case.
        assert both("GET", api, "LOCALHOST:5000") == [True, False]
        # The UI served from a private address posts to its own origin: same origin, not a cross-site write.
        js = {"Content-Type": "application/json", "Origin": "http://10.0.0.5:5000"}
        assert both("POST", "/api/2.0/mlflow/experiments/create", "10.0.0.5:5000", js, '{"name": "from-own-page"}') == [True, False]
    finally:
        oracle.stop()
        tally.stop()
    # An entry without a port takes any port; the server's own --host stays allowed.
    tally = Server("--allowed-hosts", "tally.example.com")
    try:
        api = "/api/2.0/mlflow/experiments/search?max_results=1"
        assert probe(tally.url, "GET", api, "tally.example.com:5000")[0] == 200
        assert probe(tally.url, "GET", api)[0] == 200  # 127.0.0.1:port, the --host it listens on
        assert refused(probe(tally.url, "GET", api, f"localhost:{tally.port}"))
    finally:
        tally.stop()


def test_options_from_the_environment_and_refused_settings():
    port = free_port()
    env = {"MLFLOW_SERVER_ALLOWED_HOSTS": "tally.example.com", "MLFLOW_SERVER_CORS_ALLOWED_ORIGINS": "https://app.example.com",
           "MLFLOW_SERVER_X_FRAME_OPTIONS": "deny"}
    url = f"http://127.0.0.1:{port}"
    at = ["--host", "127.0.0.1", "--port", str(port)]
    with tally_serving(at, url, env) as log:
        create = "/api/2.0/mlflow/experiments/create"
        assert refused(probe(url, "GET", "/", "localhost"))
        s, h, _ = probe(url, "GET", "/", "tally.example.com")
        assert s == 200 and h["x-frame-options"] == "DENY"
        js = {"Content-Type": "application/json"}
        assert probe(url, "POST", create, "tally.example.com", {**js, "Origin": "https://app.example.com"}, '{"name": "env-app"}')[0] == 200
        assert refused(probe(url, "POST", create, "tally.example.com", {**js, "Origin": "https://other.example"}, '{"name": "env-other"}'))
    said = open(log).read()
    assert "browser defences on" in said and "tally.example.com" in said and "https://app.example.com" in said, said
    # The option wins over the variable.
    with tally_serving([*at, "--allowed-hosts", "*"], url, env):
        assert not refused(probe(url, "GET", "/", "evil.example"))
    for disabled in (["--disable-security-middleware"], []):
        with tally_serving([*at, *disabled], url, {} if disabled else {"MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE": "True"}) as log:
            s, h, _ = probe(url, "POST", "/api/2.0/mlflow/experiments/create", "evil.example",
                            {"Content-Type": "application/json", "Origin": "https://evil.example"}, json.dumps({"name": f"open{len(disabled)}"}))
            assert s == 200 and "x-frame-options" not in h
        assert "browser defences off" in open(log).read()
    for args, env, says in [(["--x-frame-options", "ALLOW-FROM https://x"], {}, "is not SAMEORIGIN, DENY or NONE"),
                            (["--allowed-hosts", "https://tally.example.com"], {}, "is not a host"),
                            (["--cors-allowed-origins", "https://app.example.com/"], {}, "is not an origin"),
                            ([], {"MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE": "maybe"}, "true or false")]:
        said = refused_start(["--port", str(free_port()), *args], env)
        assert says in said, said


class Pages(BaseHTTPRequestHandler):
    """Serves an empty page at any path: the origin a script in the browser runs from."""

    def do_GET(self):
        body = b"<!doctype html><title>page</title><p>page"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def pages():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()


def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver:
        pytest.fail("chromium and chromedriver are required (scripts/bootstrap installs them)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    # Names a web page could have, resolving to this machine, as an attacker's would after rebinding.
    for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--host-resolver-rules=MAP evil.test 127.0.0.1, MAP app.test 127.0.0.1, MAP rebind.test 127.0.0.1"]:
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(driver), options=opts)


ATTACK = """
const [base, runId, done] = arguments;
const out = {};
async function attempt(name, f) { try { out[name] = await f(); } catch (e) { out[name] = 'failed: ' + e.name; } }
await attempt('json', async () => (await fetch(base + '/api/2.0/mlflow/experiments/create', {method: 'POST',
  headers: {'Content-Type': 'application/json'}, body: JSON.stringify({name: 'csrf-json'})})).status);
await attempt('text', async () => (await fetch(base + '/api/2.0/mlflow/experiments/create', {method: 'POST', mode: 'no-cors',
  headers: {'Content-Type': 'text/plain'}, body: JSON.stringify({name: 'csrf-text'})})).type);
await attempt('native', async () => (await fetch(base + '/api/tally/v1/runs/' + runId + '/metrics', {method: 'POST', mode: 'no-cors',
  headers: {'Content-Type': 'text/plain'}, body: JSON.stringify({metrics: [{key: 'csrf', steps: [1], values: [1]}]})})).type);
await attempt('read', async () => (await (await fetch(base + '/api/2.0/mlflow/experiments/search?max_results=5')).json()).experiments.length);
done(out);
"""


def test_a_browser_page_from_another_site_cannot_use_the_server(pages):
    d = chromium()
    d.set_script_timeout(30)
    # The control: with the defences off, the same page writes metric points into a run through the native endpoint
    # (it reads its body whatever the content type), and a rebinding page reads the experiments.
    open_server = Server("--disable-security-middleware")
    try:
        c = MlflowClient(open_server.url)
        run = c.create_run("0").info.run_id
        d.get(f"http://evil.test:{pages}/")
        out = d.execute_async_script(ATTACK, open_server.url, run)
        assert out["native"] == "opaque" and [m.value for m in c.get_metric_history(run, "csrf")] == [1.0], out
        d.get(f"http://rebind.test:{open_server.port}/")
        out = d.execute_async_script(ATTACK, f"http://rebind.test:{open_server.port}", run)
        assert out["read"] >= 1, out
    finally:
        open_server.stop()
    tally = Server("--cors-allowed-origins", f"http://app.test:{pages}")
    try:
        c = MlflowClient(tally.url)
        run = c.create_run("0").info.run_id
        # A page of another site: its writes are refused, and what it reads it cannot see.
        d.get(f"http://evil.test:{pages}/")
        out = d.execute_async_script(ATTACK, tally.url, run)
        assert out["json"].startswith("failed") and out["read"].startswith("failed"), out
        assert out["text"] == "opaque" and out["native"] == "opaque", out  # sent, the answers hidden from the page
        assert [e.name for e in c.search_experiments()] == ["Default"], "a cross-site write got through"
        assert c.get_metric_history(run, "csrf") == []
        # DNS rebinding: a page at a name that now resolves to the server is same-origin with it, and refused.
        d.get(f"http://rebind.test:{tally.port}/")
        assert "DNS rebinding" in d.page_source, d.page_source[:300]
        out = d.execute_async_script(ATTACK, f"http://rebind.test:{tally.port}", run)
        assert out["read"].startswith("failed") and out["json"] == 403, out
        # An allowed origin writes and reads across sites.
        d.get(f"http://app.test:{pages}/")
        out = d.execute_async_script(ATTACK, tally.url, run)
        assert out["json"] == 200 and out["read"] >= 1, out
        assert "csrf-json" in [e.name for e in c.search_experiments()]
    finally:
        d.quit()
        tally.stop()
