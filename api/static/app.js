// streetfleet dashboard: the world as SVG, live vehicles, requests and the event feed.
// Talks only to the public API (GET /v1/world, /v1/vehicles, /v1/requests, /v1/skus,
// POST /v1/requests) and the SSE feed /v1/events/stream. No external resources.
// Signs in with the OAuth2 password grant (POST /v1/auth/token); the tokens live in this
// tab's sessionStorage, the access token is renewed with the refresh token, and a 401 asks
// for the password again.
"use strict";

const session = {
  get access() { return sessionStorage.getItem("sf.access"); },
  get refresh() { return sessionStorage.getItem("sf.refresh"); },
  save(t) { sessionStorage.setItem("sf.access", t.access_token); sessionStorage.setItem("sf.refresh", t.refresh_token); },
  clear() { sessionStorage.removeItem("sf.access"); sessionStorage.removeItem("sf.refresh"); },
};

async function token(form) {
  const r = await fetch("/v1/auth/token", {method: "POST", body: new URLSearchParams(form)});
  if (!r.ok) return null;
  const t = await r.json();
  session.save(t);
  return t;
}

let signingIn = null;  // one login dialog at a time, however many calls got a 401
function signIn() {
  if (signingIn) return signingIn;
  const dialog = document.getElementById("login"), form = document.getElementById("login-form");
  const out = document.getElementById("login-result");
  signingIn = new Promise(resolve => {
    form.onsubmit = async ev => {
      ev.preventDefault();
      const t = await token({grant_type: "password", username: form.username.value, password: form.password.value});
      if (!t) { out.textContent = "Wrong user name or password, or the account is disabled."; return; }
      out.textContent = ""; form.password.value = "";
      dialog.close(); signingIn = null; resolve();
    };
    dialog.showModal();
  });
  return signingIn;
}

// fetch with the access token: renews it once with the refresh token, else asks to sign in
async function api(url, opts = {}) {
  for (let attempt = 0; attempt < 3; attempt++) {
    if (!session.access) await signIn();
    const headers = {...(opts.headers || {}), Authorization: `Bearer ${session.access}`};
    const r = await fetch(url, {...opts, headers});
    if (r.status !== 401) return r;
    const renewed = session.refresh && await token({grant_type: "refresh_token", refresh_token: session.refresh});
    if (!renewed) { session.clear(); }
  }
  throw new Error(`${url}: not signed in`);
}

const svg = document.getElementById("map");
const NS = "http://www.w3.org/2000/svg";
let project = null;  // [lon, lat] -> [x, y] in SVG units

function el(tag, attrs, parent) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

function text(s) { return document.createTextNode(s); }

async function getJSON(url) {
  const r = await api(url);
  if (!r.ok) throw new Error(`${url}: ${r.status}`);
  return r.json();
}

function drawWorld(world) {
  document.getElementById("world-name").textContent = world.properties.name;
  const pts = [];
  for (const f of world.features) {
    const g = f.geometry;
    if (g.type === "Polygon") pts.push(...g.coordinates[0]);
    else if (g.type === "LineString") pts.push(...g.coordinates);
    else pts.push(g.coordinates);
  }
  const lons = pts.map(p => p[0]), lats = pts.map(p => p[1]);
  const [minLon, maxLon, minLat, maxLat] = [Math.min(...lons), Math.max(...lons), Math.min(...lats), Math.max(...lats)];
  const kx = Math.cos((minLat + maxLat) / 2 * Math.PI / 180);  // metres per degree east vs north
  const w = (maxLon - minLon) * kx, h = maxLat - minLat, W = 1000, H = 1000 * h / w;
  svg.setAttribute("viewBox", `-20 -20 ${W + 40} ${H + 40}`);
  project = ([lon, lat]) => [(lon - minLon) * kx / w * W, (maxLat - lat) / h * H];
  const path = ring => ring.map((p, i) => (i ? "L" : "M") + project(p).join(",")).join(" ") + "Z";
  const layers = {};
  for (const name of ["area", "road", "community", "nfz", "site", "vehicles"]) layers[name] = el("g", {}, svg);
  for (const f of world.features) {
    const p = f.properties, g = f.geometry;
    if (p.kind === "operating_area") el("path", {d: path(g.coordinates[0]), class: "area"}, layers.area);
    if (p.kind === "road") el("path", {d: path(g.coordinates).slice(0, -1), class: "road"}, layers.road);
    if (p.kind === "community") {
      const e = el("path", {d: path(g.coordinates[0]), class: "community"}, layers.community);
      el("title", {}, e).appendChild(text(`${p.name} ${p.name_zh || ""} (${p.id}), ${p.population} residents`));
      const [x, y] = project(p.drop_point);
      el("text", {x: x + 4, y: y - 4, class: "label"}, layers.community).appendChild(text(p.id));
    }
    if (p.kind === "no_fly_zone") {
      const e = el("path", {d: path(g.coordinates[0]), class: "nfz"}, layers.nfz);
      el("title", {}, e).appendChild(text(p.name));
    }
    if (p.kind === "warehouse") {
      const [x, y] = project(g.coordinates);
      el("rect", {x: x - 6, y: y - 6, width: 12, height: 12, class: "warehouse"}, layers.site);
      el("text", {x: x + 9, y: y + 4, class: "label"}, layers.site).appendChild(text(p.name));
    }
    if (p.kind === "pad") {
      const [x, y] = project(g.coordinates);
      el("circle", {cx: x, cy: y, r: 4, class: "pad"}, layers.site);
    }
  }
  return layers.vehicles;
}

function drawVehicles(layer, vehicles) {
  while (layer.firstChild) layer.removeChild(layer.firstChild);
  const placed = [];  // label boxes already drawn, so that vehicles on neighbouring pads stay legible
  for (const v of vehicles) {
    if (!v.position || !project || v.kind === "payload") continue;  // payloads ride on their drone
    const [x, y] = project([v.position.lon, v.position.lat]);
    const cls = `vehicle ${v.kind === "van" ? "van" : "drone"} ${v.link === "online" ? "" : "lost"}`;
    const c = el("circle", {cx: x, cy: y, r: v.kind === "van" ? 7 : 6, class: cls}, layer);
    el("title", {}, c).appendChild(text(`${v.id}: ${v.mode}, ${Math.round(v.position.rel_alt)} m, battery ${pct(v.battery_fraction)}`));
    let ly = y + 4;
    while (placed.some(([px, py]) => Math.abs(px - x) < 70 && Math.abs(py - ly) < 12)) ly += 12;
    placed.push([x, ly]);
    el("text", {x: x + 9, y: ly, class: "vlabel"}, layer).appendChild(text(v.id));
  }
}

function pct(f) { return f == null ? "?" : `${Math.round(f * 100)}%`; }

function fillTable(id, rows) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren(...rows.map(cells => {
    const tr = document.createElement("tr");
    for (const [value, cls] of cells) {
      const td = document.createElement("td");
      td.textContent = value;
      if (cls) td.className = cls;
      tr.appendChild(td);
    }
    return tr;
  }));
}

async function refresh(vehicleLayer) {
  try {
    const [vehicles, requests] = await Promise.all([getJSON("/v1/vehicles"), getJSON("/v1/requests?limit=1000")]);
    drawVehicles(vehicleLayer, vehicles);
    fillTable("vehicles", vehicles.filter(v => v.kind !== "payload").map(v => [
      [v.id], [v.mode], [pct(v.battery_fraction)], [v.link],
      [v.busy_with ? v.busy_with.slice(0, 8) : ""]]));
    fillTable("requests", requests.slice(-30).reverse().map(r => [
      [r.community_id], [r.priority.replace("_", " ")], [r.state, `state-${r.state}`],
      [r.items.map(i => `${i.delivered}/${i.quantity} ${i.sku_id}`).join(", ")]]));
  } catch (err) {
    console.warn(err);
  }
}

function listenEvents() {
  const list = document.getElementById("events");
  let source = null;
  const open = () => {
    // EventSource sends no headers: the token goes in the query (the service accepts it there)
    source = new EventSource(`/v1/events/stream?access_token=${encodeURIComponent(session.access)}`);
    source.onmessage = onMessage;
    source.onerror = async () => {  // an expired token closes the stream: renew and reopen
      if (source.readyState !== EventSource.CLOSED) return;
      await api("/v1/auth/me");
      open();
    };
  };
  const onMessage = msg => {
    const e = JSON.parse(msg.data);
    if (e.type === "vehicle_event" && e.kind === "mode_changed") return;
    const li = document.createElement("li");
    const who = e.vehicle_id || (e.mission_id || e.request_id || "").slice(0, 8);
    const what = e.type === "mission_event" ? (e.to_state ? `→ ${e.to_state}: ${e.reason}` : e.reason) : e.message || e.kind;
    li.textContent = `${new Date(e.at * 1000).toLocaleTimeString()} ${who} ${what}`;
    list.prepend(li);
    while (list.children.length > 200) list.removeChild(list.lastChild);
  };
  open();
}

async function setupForm(me) {
  let [sites, skus] = await Promise.all([getJSON("/v1/sites?kind=community"), getJSON("/v1/skus")]);
  if (me.role === "community_staff") sites = sites.filter(s => me.communities.includes(s.id));
  if (me.role === "viewer") document.getElementById("request-form").closest("section").hidden = true;
  const form = document.getElementById("request-form");
  form.community_id.replaceChildren(...sites.map(s => new Option(`${s.id} ${s.name}`, s.id)));
  form.sku_id.replaceChildren(...skus.map(s => new Option(`${s.name} (${s.unit})`, s.id)));
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    const out = document.getElementById("form-result");
    const body = {community_id: form.community_id.value, priority: form.priority.value,
                  items: [{sku_id: form.sku_id.value, quantity: Number(form.quantity.value)}]};
    const r = await api("/v1/requests", {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(body)});
    const data = await r.json();
    out.textContent = r.ok ? `request ${data.id.slice(0, 8)} ${data.state}` : `${data.detail}`;
  });
}

(async () => {
  const me = await getJSON("/v1/auth/me");
  document.getElementById("who").textContent = `${me.username} (${me.role.replace("_", " ")})`;
  const out = document.getElementById("sign-out");
  out.hidden = false;
  out.onclick = () => { session.clear(); location.reload(); };
  const layer = drawWorld(await getJSON("/v1/world"));
  await setupForm(me);
  listenEvents();
  await refresh(layer);
  setInterval(() => refresh(layer), 1000);
  setInterval(() => { document.getElementById("clock").textContent = new Date().toLocaleTimeString(); }, 1000);
})();
