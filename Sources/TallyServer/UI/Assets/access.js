// Access control in the UI: the login page, who is signed in (header), the admin page (users, the caller's access
// tokens, grants) and the permissions panel that experiment and model pages show to MANAGE holders.
import { mlflow, mlflow3, tally, session, loadSession } from "./api.js";
import { escape } from "./chart.js";
import { h, message } from "./dom.js";

const when = (ms) => (ms ? new Date(Number(ms)).toISOString().replace("T", " ").slice(0, 19) : "never");
const LEVELS = ["READ", "USE", "EDIT", "MANAGE", "DENY"];

/// Shows the signed-in user, the admin link and logout in the header (nothing when access control is off).
export function renderWho() {
  const who = document.getElementById("whoami");
  if (!who) return;
  if (!session.enabled || !session.user) { who.replaceChildren(); return; }
  const u = session.user;
  who.replaceChildren(h(`<span>Signed in as <strong id="whoami-name">${escape(u.username)}</strong>${u.is_admin ? " (admin)" : ""}</span>`),
    " ", h(`<a href="#/admin" id="nav-admin">${u.is_admin ? "Admin" : "Account"}</a>`), " ", logoutButton());
}

function logoutButton() {
  const b = h(`<button id="logout">Log out</button>`);
  b.onclick = async () => {
    try { await tally.post("/logout", {}); } catch { /* signed out anyway */ }
    await loadSession();
    renderWho();
    location.hash = "#/login";
  };
  return b;
}

/// `#/login?next=…`: user name and password; on success back to where the user was.
export async function loginPage(main, params) {
  const next = params.get("next") || "#/";
  main.innerHTML = "";
  const box = h(`<section class="login">
    <h1>Sign in to Tally</h1>
    <form id="login-form">
      <label for="login-user">User name</label><input id="login-user" autocomplete="username" required>
      <label for="login-password">Password</label><input id="login-password" type="password" autocomplete="current-password" required>
      <button class="primary" id="login-submit">Sign in</button>
    </form>
    <div id="login-error"></div>
  </section>`);
  main.append(box);
  box.querySelector("#login-user").focus();
  box.querySelector("#login-form").onsubmit = async (ev) => {
    ev.preventDefault();
    const err = box.querySelector("#login-error");
    err.innerHTML = "";
    try {
      await tally.post("/login", { username: box.querySelector("#login-user").value, password: box.querySelector("#login-password").value });
      await loadSession();
      renderWho();
      location.hash = next.startsWith("#/login") ? "#/" : next;
    } catch (e) {
      err.innerHTML = `<p class="error" role="alert">${escape(e.status === 401 ? "Wrong user name or password." : message(e))}</p>`;
    }
  };
}

/// `#/admin`: for admins, users (create, admin flag, password, delete) and grants; for everyone, their own tokens
/// and grants.
export async function adminPage(main) {
  main.innerHTML = "";
  const admin = session.user?.is_admin;
  const box = h(`<section>
    <h1>${admin ? "Administration" : "Account"}</h1>
    <div id="admin-error"></div>
    ${admin ? `<h2>Users</h2>
    <div class="toolbar"><input id="user-new" placeholder="user name" aria-label="New user name">
      <input id="user-new-password" type="password" placeholder="password (12+ characters)" aria-label="New user's password">
      <button id="user-create" class="primary">Create user</button></div>
    <table id="users"><thead><tr><th>User</th><th>Admin</th><th>Actions</th></tr></thead><tbody></tbody></table>
    <h2>Grant a permission</h2>
    <div class="toolbar"><input id="grant-user" placeholder="user name" aria-label="User to grant">
      <select id="grant-type" aria-label="Resource type"><option value="experiment">experiment</option><option value="registered_model">registered model</option></select>
      <input id="grant-id" placeholder="experiment id, model name or *" aria-label="Resource">
      <select id="grant-level" aria-label="Permission">${LEVELS.map((l) => `<option>${l}</option>`).join("")}</select>
      <button id="grant-submit">Grant</button></div>` : ""}
    <h2>Grants of <span id="grants-of">${escape(session.user?.username || "")}</span></h2>
    ${admin ? `<div class="toolbar"><input id="grants-user" placeholder="user name" aria-label="Show the grants of"><button id="grants-show">Show</button></div>` : ""}
    <table id="grants"><thead><tr><th>Type</th><th>Resource</th><th>Permission</th><th></th></tr></thead><tbody></tbody></table>
    <h2>My access tokens</h2>
    <p class="muted">Use one as <code>MLFLOW_TRACKING_TOKEN</code>. A token is shown once, when it is created.</p>
    <div class="toolbar"><input id="token-name" placeholder="token name" aria-label="Token name">
      <input id="token-days" type="number" min="1" placeholder="days (empty: no expiry)" aria-label="Days until it expires">
      <button id="token-create" class="primary">Create token</button></div>
    <p id="token-new" hidden>New token (copy it now): <code id="token-value"></code></p>
    <table id="tokens"><thead><tr><th>Name</th><th>ID</th><th>Created</th><th>Expires</th><th></th></tr></thead><tbody></tbody></table>
  </section>`);
  main.append(box);
  const err = box.querySelector("#admin-error");
  const guard = (f) => async () => {
    err.innerHTML = "";
    try { await f(); } catch (e) { err.innerHTML = `<p class="error" role="alert">${escape(message(e))}</p>`; }
  };
  let grantsOf = session.user?.username;

  const loadUsers = async () => {
    if (!admin) return;
    const users = (await mlflow.get("/users/list")).users || [];
    box.querySelector("#users tbody").replaceChildren(...users.map((u) => {
      const row = h(`<table><tr data-user="${escape(u.username)}"><td>${escape(u.username)}</td>
        <td><input type="checkbox" aria-label="Admin" ${u.is_admin ? "checked" : ""} ${u.username === session.user.username ? "disabled" : ""}></td><td></td></tr></table>`).querySelector("tr");
      row.querySelector("input").onchange = guard(async () => {
        await mlflow.patch("/users/update-admin", { username: u.username, is_admin: row.querySelector("input").checked });
        await loadUsers();
      });
      const pw = h(`<button>Set password</button>`);
      pw.onclick = guard(async () => {
        const p = prompt(`New password for ${u.username} (12+ characters)`);
        if (p) await mlflow.patch("/users/update-password", { username: u.username, password: p });
      });
      const del = h(`<button class="user-delete">Delete</button>`);
      del.disabled = u.username === session.user.username;
      del.onclick = guard(async () => {
        if (!confirm(`Delete user ${u.username}?`)) return;
        await mlflow.del("/users/delete", { username: u.username });
        await loadUsers();
      });
      const show = h(`<button>Grants</button>`);
      show.onclick = guard(async () => { grantsOf = u.username; await loadGrants(); });
      row.lastElementChild.append(pw, " ", show, " ", del);
      return row;
    }));
  };

  const loadGrants = async () => {
    box.querySelector("#grants-of").textContent = grantsOf;
    const list = await mlflow3.get("/users/permissions/list", { username: grantsOf });
    box.querySelector("#grants tbody").replaceChildren(...(list.permissions || []).map((g) => {
      const row = h(`<table><tr><td>${escape(g.resource_type)}</td><td>${escape(g.resource_pattern)}</td><td>${escape(g.permission)}</td><td></td></tr></table>`).querySelector("tr");
      if (admin) {
        const revoke = h(`<button>Revoke</button>`);
        revoke.onclick = guard(async () => {
          await mlflow3.post("/users/permissions/revoke", { username: grantsOf, resource_type: g.resource_type, resource_id: g.resource_pattern });
          await loadGrants();
        });
        row.lastElementChild.append(revoke);
      }
      return row;
    }));
  };

  const loadTokens = async () => {
    const tokens = (await tally.get("/tokens")).tokens || [];
    box.querySelector("#tokens tbody").replaceChildren(...tokens.map((t) => {
      const row = h(`<table><tr data-token="${escape(t.id)}"><td>${escape(t.name)}</td><td><code>${escape(t.id)}</code></td>
        <td>${when(t.creation_time)}</td><td>${when(t.expiry_time)}</td><td></td></tr></table>`).querySelector("tr");
      const revoke = h(`<button class="token-revoke">Revoke</button>`);
      revoke.onclick = guard(async () => { await tally.del(`/tokens/${encodeURIComponent(t.id)}`); await loadTokens(); });
      row.lastElementChild.append(revoke);
      return row;
    }));
  };

  if (admin) {
    box.querySelector("#user-create").onclick = guard(async () => {
      await mlflow.post("/users/create", { username: box.querySelector("#user-new").value.trim(), password: box.querySelector("#user-new-password").value });
      box.querySelector("#user-new").value = "";
      box.querySelector("#user-new-password").value = "";
      await loadUsers();
    });
    box.querySelector("#grant-submit").onclick = guard(async () => {
      const username = box.querySelector("#grant-user").value.trim();
      await mlflow3.post("/users/permissions/grant", { username, resource_type: box.querySelector("#grant-type").value,
        resource_id: box.querySelector("#grant-id").value.trim(), permission: box.querySelector("#grant-level").value });
      grantsOf = username;
      await loadGrants();
    });
    box.querySelector("#grants-show").onclick = guard(async () => { grantsOf = box.querySelector("#grants-user").value.trim(); await loadGrants(); });
  }
  box.querySelector("#token-create").onclick = guard(async () => {
    const days = box.querySelector("#token-days").value;
    const t = await tally.post("/tokens", { name: box.querySelector("#token-name").value.trim(), ...(days ? { expires_in_days: Number(days) } : {}) });
    box.querySelector("#token-value").textContent = t.token;
    box.querySelector("#token-new").hidden = false;
    box.querySelector("#token-name").value = "";
    await loadTokens();
  });
  await guard(async () => { await loadUsers(); await loadGrants(); await loadTokens(); })();
}

/// Who may do what on one experiment or registered model, with grant and revoke: only for MANAGE holders (the
/// server answers 403 to others, and the panel stays hidden). `null` when access control is off.
export async function permissionsPanel(type, id) {
  if (!session.enabled) return null;
  let grants;
  try { grants = (await tally.get("/permissions", { resource_type: type, resource_id: id })).permissions || []; } catch { return null; }
  const panel = h(`<details class="card" id="permissions"><summary>Permissions</summary>
    <table><thead><tr><th>User</th><th>Permission</th><th></th></tr></thead><tbody></tbody></table>
    <div class="toolbar"><input id="perm-user" placeholder="user name" aria-label="User to grant">
      <select id="perm-level" aria-label="Permission">${LEVELS.map((l) => `<option>${l}</option>`).join("")}</select>
      <button id="perm-grant">Grant</button></div>
    <div id="perm-error"></div></details>`);
  const err = panel.querySelector("#perm-error");
  const render = () => panel.querySelector("tbody").replaceChildren(...grants.map((g) => {
    const row = h(`<table><tr data-grant="${escape(g.username)}"><td>${escape(g.username)}</td><td>${escape(g.permission)}</td><td></td></tr></table>`).querySelector("tr");
    const revoke = h(`<button>Revoke</button>`);
    revoke.onclick = async () => {
      try {
        await mlflow3.post("/users/permissions/revoke", { username: g.username, resource_type: type, resource_id: id });
        grants = grants.filter((x) => x !== g);
        render();
      } catch (e) { err.innerHTML = `<p class="error" role="alert">${escape(message(e))}</p>`; }
    };
    row.lastElementChild.append(revoke);
    return row;
  }));
  panel.querySelector("#perm-grant").onclick = async () => {
    err.innerHTML = "";
    try {
      const username = panel.querySelector("#perm-user").value.trim(), permission = panel.querySelector("#perm-level").value;
      await mlflow3.post("/users/permissions/grant", { username, resource_type: type, resource_id: id, permission });
      grants = (await tally.get("/permissions", { resource_type: type, resource_id: id })).permissions || [];
      render();
    } catch (e) { err.innerHTML = `<p class="error" role="alert">${escape(message(e))}</p>`; }
  };
  render();
  return panel;
}
