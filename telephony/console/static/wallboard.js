// The supervisor's wallboard: /api/wallboard drawn by panel, refreshed within a second of
// every live event (the console's WebSocket) and every few seconds for the database figures.
// Everything shown from the server is set with textContent: typed text stays text.
const settings = JSON.parse(document.body.dataset.settings);
const words = settings.words;
const REFRESH_MS = 2000;
const CHART_MS = 60000;
let language = localStorage.getItem("console-language") || "id";
let me = null;
let data = null;
let offset = 0;   // server clock minus ours, seconds
let pending = null;

const label = (name) => (words.labels[name] || {})[language] || name || "-";
const fmtShare = (share) => `${Math.round(share * 1000) / 10}%`;
function fmtSeconds(s) {
  s = Math.max(0, Math.floor(s));
  const m = Math.floor(s / 60);
  return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`
    : `${m}:${String(s % 60).padStart(2, "0")}`;
}
const now = () => Date.now() / 1000 + offset;

function translate() {
  document.documentElement.lang = language;
  for (const element of document.querySelectorAll("[data-w]")) element.textContent = label(element.dataset.w);
  document.getElementById("language").textContent = language === "id" ? "EN" : "ID";
  if (data) draw();
}

function set(root, selector, text) { root.querySelector(selector).textContent = text; }

// Renderers by panel name, the server's registry mirrored: a panel without one is not drawn.
const renderers = {
  regencies(rows) {
    const holder = document.getElementById("regencies");
    for (const row of rows) {
      let element = holder.querySelector(`[data-regency="${row.code}"]`);
      if (!element) {
        element = document.getElementById("regency-template").content.firstElementChild.cloneNode(true);
        element.dataset.regency = row.code;
        holder.append(element);
        for (const w of element.querySelectorAll("[data-w]")) w.textContent = label(w.dataset.w);
      }
      set(element, ".code", row.code);
      set(element, ".name", row.name);
      set(element, ".waiting", String(row.waiting));
      element.querySelector(".waiting").classList.toggle("alert", row.waiting > 0);
      element.querySelector(".longest").dataset.since = row.longest_since ?? "";
      for (const key of ["answered", "abandoned", "ghost", "prank", "callbacks"]) set(element, `.${key}`, String(row[key]));
      for (const level of row.within) {
        const value = element.querySelector(`.within-${level.seconds}`);
        value.textContent = row.offered ? fmtShare(level.share) : "-";
        value.classList.toggle("met", row.offered > 0 && level.share >= level.target);
        value.classList.toggle("miss", row.offered > 0 && level.share < level.target);
        set(element, `.within-${level.seconds}-label`,
          `${label("within")} ${level.seconds} s (${label("target")} ${fmtShare(level.target)})`);
      }
      const list = element.querySelector(".operators");
      list.replaceChildren(...row.operators.map((op) => {
        const item = document.createElement("li");
        item.className = op.state;
        item.dataset.since = op.since ?? "";
        item.dataset.text = `${op.id} ${label(op.state)}${op.reason ? ` (${label(op.reason)})` : ""}`;
        return item;
      }));
    }
  },
  messages(rows) {
    const list = document.getElementById("messages");
    document.getElementById("no-message").hidden = rows.some((m) => m.active);
    list.replaceChildren(...rows.map((m) => {
      const item = document.createElement("li");
      item.dataset.message = m.id;
      const text = document.createElement("q");
      text.textContent = language === "en" && m.text_en ? m.text_en : m.text_id;
      const facts = document.createElement("div");
      facts.className = "facts";
      facts.textContent = `${m.area} · ${label("until")} ${new Date(m.expires_at).toLocaleTimeString()} · `
        + `${label("per-minute")}: ${m.per_minute} · ${label("heard")}: ${m.heard} · `
        + `${label("hung-up-after")}: ${m.hung_up_after}`;
      item.append(text, facts);
      if (m.active) {
        const end = document.createElement("button");
        end.textContent = label("expire");
        end.addEventListener("click", () => post(`/api/messages/${m.id}/expire`).then(refresh));
        item.append(end);
      }
      return item;
    }));
  },
  incidents(rows) {
    document.getElementById("no-incidents").hidden = rows.length > 0;
    document.getElementById("incidents").replaceChildren(...rows.map((agency) => {
      const element = document.createElement("article");
      element.className = "agency";
      element.dataset.agency = agency.agency_id;
      element.classList.toggle("alert", agency.alerts > 0);
      const title = document.createElement("h3");
      title.textContent = `${agency.agency_name} (${agency.regency_code})`
        + (agency.alerts ? ` · ${label("unacknowledged")}: ${agency.alerts}` : "");
      const list = document.createElement("ul");
      list.append(...agency.handoffs.map((h) => {
        const item = document.createElement("li");
        item.dataset.incident = h.incident_id;
        item.classList.toggle("alert", h.alert);
        item.dataset.since = h.dispatched_at;
        item.dataset.text = `#${h.incident_id} ${label(h.incident_type)} P${h.priority} `
          + `${label(h.status)}${h.alert ? ` ⚠ ${label("unacknowledged")}` : ""} · ${label("since-dispatch")}`;
        return item;
      }));
      element.append(title, list);
      return element;
    }));
  },
  unmatched(rows) {
    document.getElementById("no-unmatched").hidden = rows.length > 0;
    document.getElementById("unmatched").replaceChildren(...rows.map((fix) => {
      const item = document.createElement("li");
      item.dataset.fix = fix.id;
      item.dataset.since = fix.received_at;
      item.dataset.text = `${fix.number} · ${fix.lat.toFixed(5)}, ${fix.lon.toFixed(5)} `
        + `±${Math.round(fix.accuracy_m)} m · ${fix.sender} ·`;
      return item;
    }));
  },
};

function tick() {
  const t = now();
  document.getElementById("clock").textContent = new Date(t * 1000).toLocaleTimeString();
  for (const element of document.querySelectorAll(".longest")) {
    element.textContent = element.dataset.since ? fmtSeconds(t - Number(element.dataset.since)) : "-";
  }
  for (const item of document.querySelectorAll(".operators li, #incidents li, #unmatched li")) {
    const since = item.dataset.since;
    item.textContent = since ? `${item.dataset.text} ${fmtSeconds(t - Number(since))}` : item.dataset.text;
  }
}

function draw() {
  for (const [name, rows] of Object.entries(data.panels)) {
    if (renderers[name]) renderers[name](rows);
  }
  tick();
}

async function api(path, options = {}) {
  const headers = {"Content-Type": "application/json"};
  if (me) headers["X-CSRF-Token"] = me.csrf_token;
  const answer = await fetch(path, {credentials: "same-origin", headers, ...options});
  if (answer.status === 401) window.location.assign("/login");
  const body = await answer.json().catch(() => ({}));
  if (!answer.ok) throw new Error(typeof body.detail === "string" ? body.detail : answer.statusText);
  return body;
}
const post = (path, body) => api(path, {method: "POST", body: JSON.stringify(body || {})});

async function refresh() {
  pending = null;
  try {
    data = await api("/api/wallboard");
    offset = data.now - Date.now() / 1000;
    document.getElementById("banner").hidden = true;
    draw();
    window.wallboardData = data;
  } catch (error) {
    const banner = document.getElementById("banner");
    banner.textContent = error.message;
    banner.hidden = false;
  }
}

function soon() { if (pending === null) pending = setTimeout(refresh, 100); }

function connect() {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${window.location.host}/api/live`);
  socket.onmessage = soon;
  socket.onclose = () => setTimeout(connect, 1000);
}

document.getElementById("language").addEventListener("click", () => {
  language = language === "id" ? "en" : "id";
  localStorage.setItem("console-language", language);
  translate();
});
document.getElementById("publish").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const result = document.getElementById("publish-result");
  try {
    // The area: regency codes, or a circle given as LAT,LON,RADIUS_M.
    const circle = form.circle.value.split(",").map((v) => v.trim()).filter(Boolean).map(Number);
    const area = circle.length === 3 ? {lat: circle[0], lon: circle[1], radius_m: circle[2]}
      : {regencies: form.regencies.value.split(",").map((c) => c.trim()).filter(Boolean)};
    const made = await post("/api/messages", {
      text_id: form.text_id.value, text_en: form.text_en.value, minutes: Number(form.minutes.value),
      ...area});
    result.textContent = `#${made.id} ${made.seconds} s`;
    refresh();
  } catch (error) { result.textContent = error.message; }
});
document.getElementById("report").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  window.location.assign(`/api/reports?${new URLSearchParams(form)}`);
});
setInterval(() => { document.getElementById("chart").src = `/api/wallboard/chart.svg?${Date.now()}`; }, CHART_MS);
setInterval(refresh, REFRESH_MS);
setInterval(tick, 1000);
translate();
api("/api/me").then((who) => { me = who; });
refresh().then(connect);
