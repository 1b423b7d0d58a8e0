"""The web UI with access control on, in headless Chromium: the login page (wrong password shown, then signed in
and sent back where the user was going), the session cookie (HttpOnly, SameSite=Strict) and its CSRF token
(a state-changing call without it is refused), who is signed in, the permissions panel on experiment and model pages
for MANAGE holders only, the account page's tokens (shown once, usable as MLFLOW_TRACKING_TOKEN, revoked), the
admin page's users, and logout."""
import base64
import os

import pytest
import requests

from conftest import Server
from test_ui import browser, console_errors, wait  # noqa: F401 (the browser fixture)

ADMIN_PASSWORD = "admin-password-1"


def auth(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def secured():
    s = Server("--auth", "basic", env={"MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD})
    admin = auth("admin", ADMIN_PASSWORD)
    api = s.url + "/api/2.0/mlflow"
    for name in ("alice", "bob"):
        assert requests.post(api + "/users/create", json={"username": name, "password": f"{name}-password"}, headers=admin).status_code == 200
    alice = auth("alice", "alice-password")
    mine = requests.post(api + "/experiments/create", json={"name": "alice-exp"}, headers=alice).json()["experiment_id"]
    theirs = requests.post(api + "/experiments/create", json={"name": "admin-exp"}, headers=admin).json()["experiment_id"]
    assert requests.post(api + "/registered-models/create", json={"name": "alice-model"}, headers=alice).status_code == 200
    s.ids = {"mine": mine, "theirs": theirs}
    yield s
    code = s.proc.poll()
    s.stop()
    assert code is None, "the server died during the tests"


def ready(d):
    wait(d, "return document.body.dataset.ready === (location.hash || '#/')")


def login(d, url, user, password, expect_error=False):
    wait(d, "return location.hash.startsWith('#/login') && document.getElementById('login-user') !== null")
    d.find_element("id", "login-user").clear()
    d.find_element("id", "login-user").send_keys(user)
    d.find_element("id", "login-password").clear()
    d.find_element("id", "login-password").send_keys(password)
    d.find_element("id", "login-submit").click()
    if expect_error:
        wait(d, "return document.querySelector('#login-error .error') !== null")
    else:
        wait(d, f"return document.getElementById('whoami-name')?.textContent === '{user}'")


def test_login_session_and_permissions_panel(secured, browser):
    d = browser
    d.delete_all_cookies()
    d.get(secured.url + f"/#/experiments/{secured.ids['mine']}")
    login(d, secured.url, "alice", "wrong-password", expect_error=True)
    assert "Wrong user name or password" in d.find_element("id", "login-error").text
    login(d, secured.url, "alice", "alice-password")
    # Back where she was going: her experiment, with its permissions panel (she created it: MANAGE).
    wait(d, f"return location.hash === '#/experiments/{secured.ids['mine']}' && document.getElementById('permissions') !== null")
    cookie = d.get_cookie("tally_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert d.execute_script("return document.cookie").find("tally_session") < 0  # not readable by scripts
    d.execute_script("document.getElementById('permissions').open = true")
    wait(d, "return [...document.querySelectorAll('#permissions tbody tr')].some(r => r.dataset.grant === 'alice')")
    d.find_element("id", "perm-user").send_keys("bob")
    d.execute_script("document.getElementById('perm-level').value = 'EDIT'")
    d.find_element("id", "perm-grant").click()
    wait(d, "return [...document.querySelectorAll('#permissions tbody tr')].some(r => r.dataset.grant === 'bob')")
    got = requests.get(secured.url + "/api/3.0/mlflow/users/permissions/get",
                       params={"username": "bob", "resource_type": "experiment", "resource_id": secured.ids["mine"]}, headers=auth("bob", "bob-password"))
    assert got.json()["permission"] == "EDIT"
    d.execute_script("[...document.querySelectorAll('#permissions tbody tr')].find(r => r.dataset.grant === 'bob').querySelector('button').click()")
    wait(d, "return ![...document.querySelectorAll('#permissions tbody tr')].some(r => r.dataset.grant === 'bob')")
    # Someone else's experiment: readable, but no panel.
    d.get(secured.url + f"/#/experiments/{secured.ids['theirs']}")
    ready(d)
    wait(d, "return document.querySelector('#run-table') !== null")
    assert d.execute_script("return document.getElementById('permissions')") is None
    # Her model: the panel again.
    d.get(secured.url + "/#/models/alice-model")
    ready(d)
    wait(d, "return document.getElementById('permissions') !== null")
    # A state-changing call of the session without its CSRF token is refused; with it, it works.
    status = d.execute_async_script("""const done = arguments[0];
        fetch('/ajax-api/2.0/mlflow/experiments/create', {method: 'POST', headers: {'Content-Type': 'application/json'},
              body: JSON.stringify({name: 'csrf-less'})}).then(r => done(r.status));""")
    assert status == 403
    assert all(e["source"] == "network" for e in console_errors(d))


def test_tokens_admin_page_and_logout(secured, browser):
    d = browser
    d.delete_all_cookies()
    d.get(secured.url + "/#/admin")
    login(d, secured.url, "alice", "alice-password")
    wait(d, "return location.hash === '#/admin' && document.getElementById('token-create') !== null")
    assert d.execute_script("return document.getElementById('users')") is None  # not an admin
    d.find_element("id", "token-name").send_keys("notebook")
    d.find_element("id", "token-create").click()
    wait(d, "return document.getElementById('token-value').textContent.startsWith('tly_')")
    token = d.find_element("id", "token-value").text
    bearer = {"Authorization": "Bearer " + token}
    assert requests.get(secured.url + "/api/2.0/mlflow/experiments/search?max_results=5", headers=bearer).status_code == 200
    wait(d, "return document.querySelectorAll('#tokens tbody tr').length === 1")
    d.execute_script("document.querySelector('#tokens .token-revoke').click()")
    wait(d, "return document.querySelectorAll('#tokens tbody tr').length === 0")
    assert requests.get(secured.url + "/api/2.0/mlflow/experiments/search?max_results=5", headers=bearer).status_code == 401
    # Logout ends the session on the server: its cookie no longer works.
    old = d.get_cookie("tally_session")["value"]
    d.find_element("id", "logout").click()
    wait(d, "return location.hash.startsWith('#/login')")
    assert requests.get(secured.url + "/api/2.0/mlflow/experiments/search?max_results=5", cookies={"tally_session": old}).status_code == 401
    # The admin's page: users created, promoted and deleted from the browser.
    login(d, secured.url, "admin", ADMIN_PASSWORD)
    d.get(secured.url + "/#/admin")
    ready(d)
    wait(d, "return document.querySelectorAll('#users tbody tr').length === 3")
    d.find_element("id", "user-new").send_keys("carol")
    d.find_element("id", "user-new-password").send_keys("carol-password")
    d.find_element("id", "user-create").click()
    wait(d, "return document.querySelector('#users tr[data-user=carol]') !== null")
    d.execute_script("document.querySelector('#users tr[data-user=carol] input').click()")
    wait(d, "return document.querySelector('#users tr[data-user=carol] input').checked")
    admin = auth("admin", ADMIN_PASSWORD)
    assert requests.get(secured.url + "/api/2.0/mlflow/users/get?username=carol", headers=admin).json()["user"]["is_admin"]
    d.execute_script("window.confirm = () => true; document.querySelector('#users tr[data-user=carol] .user-delete').click()")
    wait(d, "return document.querySelector('#users tr[data-user=carol]') === null")
    assert requests.get(secured.url + "/api/2.0/mlflow/users/get?username=carol", headers=admin).status_code == 404
    assert all(e["source"] == "network" for e in console_errors(d))
