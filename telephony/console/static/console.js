// The operator's console page: live cards over a WebSocket (snapshot + numbered events),
// the map, the caller's history, classification, handover, presence and callbacks.
// Everything shown from the server is set with textContent: typed text stays text.
import {drawMap, place} from "/static/map.js";
import {showHandset} from "/static/handset.js";

const settings = JSON.parse(document.body.dataset.settings);
const words = settings.words;
const TEXT = {
  id: {current: "Panggilan", recent: "Panggilan terakhir", callbacks: "Panggil balik",
       nocall: "Tidak ada panggilan.", history: "Riwayat 30 hari", save: "Simpan",
       handover: "Alihkan", unpause: "Siap", pause: "Jeda", leave: "Keluar antrean",
       logout: "Keluar", newerfix: "Lokasi baru tersedia: tampilkan",
       take: "Ambil", done: "Selesai", nohistory: "Belum pernah menelepon.",
       nuisance: "Iseng", ghost: "Diam", via: "melalui", classified: "Diklasifikasi",
       shortcuts: "Pintasan: Alt+1..6 klasifikasi, Alt+S simpan, Alt+P jeda, Alt+U siap, Alt+L bahasa",
       confidence: "keyakinan", hops: "Antrean"},
  en: {current: "Calls", recent: "Recent calls", callbacks: "Callbacks",
       nocall: "No calls.", history: "Last 30 days", save: "Save",
       handover: "Hand over", unpause: "Available", pause: "Pause", leave: "Leave queues",
       logout: "Log out", newerfix: "Newer location available: show it",
       take: "Take", done: "Done", nohistory: "No earlier calls.",
       nuisance: "Prank", ghost: "Silent", via: "via", classified: "Classified",
       shortcuts: "Shortcuts: Alt+1..6 classify, Alt+S save, Alt+P pause, Alt+U available, Alt+L language",
       confidence: "confidence", hops: "Queues"},
};
// Callback items are made by serve's sweeper, not announced on the live feed.
const CALLBACK_REFRESH_MS = 5000;
let language = localStorage.getItem("console-language") || "id";
let me = null;
let points = [];
let regencies = [];
const calls = new Map();      // linkedid -> card
const views = new Map();      // linkedid -> {element, map, shown}
let live = {epoch: "", seq: 0};
let status = {database: true, ami: true, link: true};

const t = (key) => TEXT[language][key] || key;
const label = (name) => (words.labels[name] || {})[language] || name || "-";

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

function translateIn(root) {
  for (const element of root.querySelectorAll("[data-t]")) element.textContent = t(element.dataset.t);
}

function translate() {
  document.documentElement.lang = language;
  translateIn(document);
  document.getElementById("language").textContent = language === "id" ? "EN" : "ID";
  const reasons = document.getElementById("pause-reason");
  const chosen = reasons.value;
  reasons.replaceChildren(...words.pause_reasons.map((r) => new Option(label(r), r)));
  if (chosen) reasons.value = chosen;
  showPresence();
  showBanner();
  document.getElementById("recent").replaceChildren();  // rebuilt in the new language
  for (const card of calls.values()) render(card, true);
  loadCallbacks();
}

function showPresence() {
  const who = document.getElementById("who");
  if (!me) return;
  who.textContent = `${me.name} · ${me.regency_name || settings.province}`;
  const p = me.presence;
  document.getElementById("presence").textContent = p
    ? `${label(p.state)}${p.reason ? ` (${label(p.reason)})` : ""}` : "";
}

function showBanner() {
  const banner = document.getElementById("banner");
  const problems = [];
  if (!status.link) problems.push(label("live-down"));
  else {
    if (!status.database) problems.push(label("db-down"));
    if (!status.ami) problems.push(label("ami-down"));
  }
  banner.textContent = problems.join(" ");
  banner.hidden = problems.length === 0;
}

function numberText(card) {
  if (card.number_kind === "withheld" || card.number_kind === "none") return label(card.number_kind);
  return card.number;
}

function render(card, force = false) {
  calls.set(card.linkedid, card);
  const active = card.phase !== "ended";
  const mine = me && me.operator_id && (card.ringing.includes(me.operator_id) || card.answered_by === me.operator_id);
  let view = views.get(card.linkedid);
  if (!active) {
    if (view) { view.element.remove(); views.delete(card.linkedid); }
    renderRecent();
    return;
  }
  if (!view) {
    const element = document.getElementById("card-template").content.firstElementChild.cloneNode(true);
    element.dataset.linkedid = card.linkedid;
    translateIn(element);
    document.getElementById("cards").prepend(element);
    view = {element, map: null, shown: null};
    views.set(card.linkedid, view);
    wire(view, card.linkedid);
  }
  const e = view.element;
  e.classList.toggle("mine", Boolean(mine));
  e.classList.toggle("ringing", card.phase === "ringing");
  e.querySelector(".number").textContent = numberText(card);
  e.querySelector(".etype").textContent = label(card.emergency_type || "unknown");
  e.querySelector(".language").textContent = card.language ? label(card.language) : "";
  e.querySelector(".phase").textContent = label(card.phase);
  e.querySelector(".regency").textContent = card.regency_name || settings.province;
  const how = [card.location ? label(card.location.kind) : "", card.location && card.location.source,
               card.method, card.confidence ? `${t("confidence")} ${card.confidence}` : "",
               card.location && card.location.radius_m ? `± ${Math.round(card.location.radius_m)} m` : ""];
  e.querySelector(".how").textContent = how.filter(Boolean).join(" · ");
  e.querySelector(".hops").textContent = card.hops.length
    ? `${t("hops")}: ${card.hops.map((h) => h.queue).join(" → ")}` : "";
  const badge = e.querySelector(".nuisance");
  const n = card.nuisance;
  badge.hidden = !n || (n.prank === 0 && n.ghost === 0);
  if (n) badge.textContent = `${t("nuisance")} ×${n.prank} · ${t("ghost")} ×${n.ghost}`;
  renderHistory(e.querySelector(".history"), card.history);
  const classified = e.querySelector(".classified");
  classified.textContent = card.classification
    ? `${t("classified")}: ${label(card.classification.category)} (${card.classification.by})` : "";
  const category = e.querySelector(".category");
  if (force || category.options.length === 0) {
    const chosen = category.value;
    category.replaceChildren(...words.categories.map((c) => new Option(label(c), c)));
    if (chosen) category.value = chosen;
  }
  const target = e.querySelector(".target");
  if (force || target.options.length === 0) {
    target.replaceChildren(...regencies.map((r) => new Option(`${r.code} ${r.name}`, r.code)));
  }
  e.querySelector(".handover").hidden = card.answered_by !== (me && me.operator_id);
  if (!view.map) {
    view.map = drawMap(e.querySelector(".map"), settings, points, card.location, numberText(card));
    view.shown = card.location ? JSON.stringify(card.location) : null;
  }
  if (card.location) {
    // A location, once shown, never moves by itself: a newer fix is offered with a button.
    // The first one is shown at once (the map had only the reference points).
    const fix = JSON.stringify(card.location);
    if (view.shown === null) {
      place(view.map, card.location, numberText(card));
      view.shown = fix;
    } else if (fix !== view.shown) {
      const button = e.querySelector(".newer-fix");
      button.hidden = false;
      button.onclick = () => { place(view.map, card.location, numberText(card)); view.shown = fix; button.hidden = true; };
    }
  }
  showHandset(view, card);
  document.getElementById("no-call").hidden = views.size > 0;
}

function renderHistory(list, history) {
  if (history === null) { list.replaceChildren(); return; }
  if (history.length === 0) {
    const item = document.createElement("li");
    item.textContent = t("nohistory");
    list.replaceChildren(item);
    return;
  }
  list.replaceChildren(...history.map((h) => {
    const item = document.createElement("li");
    const when = new Date(h.arrived_at * 1000).toLocaleString(language === "id" ? "id-ID" : "en-GB");
    const parts = [when, label(h.outcome), label(h.emergency_type || "unknown")];
    if (h.classification) parts.push(`${label(h.classification.category)}${h.classification.note ? `: ${h.classification.note}` : ""}`);
    for (const cb of h.callbacks) parts.push(cb);
    item.textContent = parts.join(" · ");
    item.className = "history-entry";
    return item;
  }));
}

function renderRecent() {
  // Rows are kept by linkedid, so a note being typed after the call survives new events.
  const list = document.getElementById("recent");
  const ended = [...calls.values()].filter((c) => c.phase === "ended")
    .sort((a, b) => b.ended_at - a.ended_at).slice(0, 20);
  const rows = new Map([...list.children].map((row) => [row.dataset.linkedid, row]));
  list.replaceChildren(...ended.map((card) => {
    const row = rows.get(card.linkedid) || recentRow(card.linkedid);
    const when = new Date(card.arrived_at * 1000).toLocaleTimeString(language === "id" ? "id-ID" : "en-GB");
    const what = card.classification ? label(card.classification.category) : "";
    row.querySelector(".summary").textContent = [when, numberText(card),
      label(card.emergency_type || "unknown"), card.regency_name, what].filter(Boolean).join(" · ");
    return row;
  }));
  document.getElementById("no-call").hidden = views.size > 0;
}

function recentRow(linkedid) {
  // Classifying after the call: the same API as on the card.
  const row = document.createElement("li");
  row.className = "recent-call";
  row.dataset.linkedid = linkedid;
  const summary = document.createElement("span");
  summary.className = "summary";
  const form = document.createElement("form");
  form.className = "classify-after";
  const category = document.createElement("select");
  category.className = "category";
  category.replaceChildren(...words.categories.map((c) => new Option(label(c), c)));
  const note = document.createElement("input");
  note.className = "note";
  note.maxLength = 200;
  const save = document.createElement("button");
  save.type = "submit";
  save.textContent = t("save");
  const result = document.createElement("span");
  result.className = "result";
  form.replaceChildren(category, note, save, result);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    post(`/api/calls/${encodeURIComponent(linkedid)}/classification`,
         {category: category.value, note: note.value})
      .then((r) => { result.textContent = r.detail; })
      .catch((error) => { result.textContent = error.message; });
  });
  row.replaceChildren(summary, form);
  return row;
}

function wire(view, linkedid) {
  const e = view.element;
  const result = e.querySelector(".result");
  const report = (promise) => promise.then((r) => { result.textContent = r.detail || "OK"; })
    .catch((error) => { result.textContent = error.message; });
  e.querySelector(".classify").addEventListener("submit", (event) => {
    event.preventDefault();
    report(post(`/api/calls/${encodeURIComponent(linkedid)}/classification`, {
      category: e.querySelector(".category").value, note: e.querySelector(".note").value}));
  });
  e.querySelector(".handover").addEventListener("submit", (event) => {
    event.preventDefault();
    report(post(`/api/calls/${encodeURIComponent(linkedid)}/handover`,
                {regency_code: e.querySelector(".target").value}));
  });
}

async function loadCallbacks() {
  const list = document.getElementById("callbacks");
  let items = [];
  try { items = await api("/api/callbacks"); } catch { return; }
  list.replaceChildren(...items.map((item) => {
    const row = document.createElement("li");
    row.className = "callback";
    const what = document.createElement("span");
    what.textContent = `#${item.id} ${item.caller} ×${item.attempts} ${label(item.emergency_type || "unknown")} · ${label(item.status)}`;
    const take = document.createElement("button");
    take.textContent = t("take");
    take.onclick = () => post(`/api/callbacks/${item.id}/take`).then(loadCallbacks).catch((e) => { what.textContent += ` — ${e.message}`; });
    const select = document.createElement("select");
    select.replaceChildren(...words.callback_outcomes.map((o) => new Option(label(o), o)));
    const done = document.createElement("button");
    done.textContent = t("done");
    done.onclick = () => post(`/api/callbacks/${item.id}/done`, {outcome: select.value}).then(loadCallbacks).catch((e) => { what.textContent += ` — ${e.message}`; });
    row.replaceChildren(what, take, select, done);
    return row;
  }));
}

function apply(event) {
  if (event.seq <= live.seq) return;  // already applied (snapshot and replay overlap)
  live.seq = event.seq;
  if (event.kind === "call") render(event.call);
  else if (event.kind === "status") { Object.assign(status, event.status); showBanner(); }
  else if (event.kind === "presence" && me && event.presence.operator_id === me.operator_id) {
    me.presence = event.presence; showPresence();
  }
}

function connect() {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${window.location.host}/api/live?since=${live.seq}&epoch=${live.epoch}`);
  let first = true;
  socket.onmessage = (message) => {
    const data = JSON.parse(message.data);
    if (first) {
      first = false;
      status.link = true;
      if (data.epoch !== live.epoch) { live = {epoch: data.epoch, seq: 0}; }
      Object.assign(status, data.status);
      for (const card of data.calls) render(card);
      for (const event of data.missed) apply(event);
      live.seq = Math.max(live.seq, data.seq);
      window.consoleLive = live;
      showBanner();
      loadCallbacks();
      return;
    }
    apply(data);
  };
  socket.onclose = () => {
    status.link = false;
    showBanner();
    setTimeout(connect, 1000);
  };
}

async function setPresence(state) {
  const reason = state === "paused" ? document.getElementById("pause-reason").value : null;
  try { me.presence = await post("/api/presence", {state, reason}); showPresence(); }
  catch (error) { document.getElementById("presence").textContent = error.message; }
}

function shortcuts(event) {
  if (!event.altKey) return;
  const card = [...views.values()].find((v) => v.element.classList.contains("mine")) || [...views.values()][0];
  const key = event.key.toLowerCase();
  if (/^[1-6]$/.test(key) && card) {
    card.element.querySelector(".category").value = words.categories[Number(key) - 1];
    card.element.querySelector(".note").focus();
  } else if (key === "s" && card) card.element.querySelector(".classify").requestSubmit();
  else if (key === "p") setPresence("paused");
  else if (key === "u") setPresence("available");
  else if (key === "l") document.getElementById("language").click();
  else return;
  event.preventDefault();
}

async function main() {
  me = await api("/api/me");
  points = await api("/api/regions");
  const seen = new Map();
  for (const p of points) if (p.launch && !seen.has(p.code)) seen.set(p.code, p);
  regencies = [...seen.values()];
  document.getElementById("language").onclick = () => {
    language = language === "id" ? "en" : "id";
    localStorage.setItem("console-language", language);
    translate();
  };
  document.getElementById("available").onclick = () => setPresence("available");
  document.getElementById("pause").onclick = () => setPresence("paused");
  document.getElementById("logout-queues").onclick = () => setPresence("logged-out");
  document.getElementById("logout").onclick = () => post("/api/logout").finally(() => window.location.assign("/login"));
  document.addEventListener("keydown", shortcuts);
  translate();
  connect();
  setInterval(loadCallbacks, CALLBACK_REFRESH_MS);
}

main();
