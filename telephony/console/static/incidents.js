// Incidents on the console page: create or link from a call's card, the incident panel with
// its timeline, dispatch to agencies, sharing with regencies; the agency user's view.
// Its own live socket takes the "incident" and "alert" events. Text from the server is set
// with textContent only: whatever was typed stays text.
const TEXT = {
  id: {incidents: "Insiden", create: "Buat insiden", link: "Tautkan ke", none: "Tidak ada insiden terbuka.",
       dispatch: "Kirim ke instansi", share: "Bagikan ke", note: "Catatan", addnote: "Tambah catatan", close: "Tutup insiden",
       calls: "panggilan", alert: "Belum diterima", timeline: "Linimasa", away: "m dari penelepon",
       created: "Dibuat", dispatched: "Dikirim", acknowledged: "Diterima", "en-route": "Dalam perjalanan",
       "on-scene": "Di lokasi", closed: "Selesai", linked: "Panggilan ditautkan", shared: "Dibagikan",
       updated: "Diubah", delivered: "Terkirim (webhook)", escalated: "Eskalasi", priority: "Prioritas",
       save: "Simpan", address: "Alamat / patokan", narrative: "Kronologi", people: "Orang terlibat",
       point: "Titik di peta (lintang, bujur)",
       police: "Polisi", medical: "Medis", fire: "Kebakaran", sar: "SAR", disaster: "Bencana", other: "Lainnya"},
  en: {incidents: "Incidents", create: "Create incident", link: "Link to", none: "No open incidents.",
       dispatch: "Dispatch to agency", share: "Share with", note: "Note", addnote: "Add note", close: "Close incident",
       calls: "calls", alert: "Not acknowledged", timeline: "Timeline", away: "m from the caller",
       created: "Created", dispatched: "Dispatched", acknowledged: "Acknowledged", "en-route": "En route",
       "on-scene": "On scene", closed: "Closed", linked: "Call linked", shared: "Shared",
       updated: "Updated", delivered: "Delivered (webhook)", escalated: "Escalated", priority: "Priority",
       save: "Save", address: "Address / landmark", narrative: "Narrative", people: "People involved",
       point: "Point on the map (lat, lon)",
       police: "Police", medical: "Medical", fire: "Fire", sar: "Search and rescue", disaster: "Disaster", other: "Other"},
};
const AGENCY_STEPS = ["acknowledged", "en-route", "on-scene", "closed"];
const TYPES = ["police", "medical", "fire", "sar", "disaster", "other"];
const t = (key) => TEXT[localStorage.getItem("console-language") || "id"][key] || key;
let me = null;
let agencies = [];
let regencies = [];
const incidents = new Map();  // id -> summary
const open = new Set();       // ids whose panel is expanded
const forms = new Map();      // id -> an edit form being typed in: kept across live updates

async function api(path, options = {}) {
  const headers = {"Content-Type": "application/json"};
  if (me) headers["X-CSRF-Token"] = me.csrf_token;
  const answer = await fetch(path, {credentials: "same-origin", headers, ...options});
  const body = await answer.json().catch(() => ({}));
  if (!answer.ok) throw new Error(typeof body.detail === "string" ? body.detail : answer.statusText);
  return body;
}
const post = (path, body) => api(path, {method: "POST", body: JSON.stringify(body || {})});

function el(tag, text, className) {
  const element = document.createElement(tag);
  if (text !== undefined) element.textContent = text;
  if (className) element.className = className;
  return element;
}

function button(text, className, action, result) {
  const b = el("button", text, className);
  b.type = "button";
  b.onclick = () => action().catch((error) => { result.textContent = error.message; });
  return b;
}

const clock = (seconds) => new Date(seconds * 1000).toLocaleTimeString("id-ID", {hour12: false});

// The card: create an incident from the call, or link it to a proposed one nearby.
async function decorate(card) {
  const linkedid = card.dataset.linkedid;
  let box = card.querySelector(".incident-box");
  if (!box) { box = el("div", undefined, "incident-box"); card.append(box); }
  const result = el("span", "", "incident-result");
  const create = button(t("create"), "create-incident", async () => {
    const made = await post("/api/incidents", {linkedid});
    open.add(made.id); show(made); result.textContent = `#${made.id}`;
  }, result);
  const proposals = await api(`/api/calls/${encodeURIComponent(linkedid)}/proposals`).catch(() => []);
  const offered = proposals.map((p) => {
    const row = el("span", undefined, "proposal");
    row.dataset.id = p.incident.id;
    row.append(button(`${t("link")} #${p.incident.id} ${t(p.incident.type)} (${Math.round(p.distance_m)} ${t("away")})`,
                      "link-incident", async () => {
      const linked = await post(`/api/incidents/${p.incident.id}/calls`, {linkedid});
      show(linked); result.textContent = `#${linked.id}`; row.remove();
    }, result));
    return row;
  });
  box.dataset.offered = String(offered.length);
  box.replaceChildren(create, ...offered, result);
}

function decorateAll() {
  if (!me || me.agency_id) return;
  for (const card of document.querySelectorAll("#cards .card[data-linkedid]")) {
    if (!card.querySelector(".incident-box")) decorate(card);
  }
}

function refreshProposals() {
  for (const card of document.querySelectorAll("#cards .card[data-linkedid]")) decorate(card);
}

// A card can come before the caller's location (still in the IVR): look again for those
// that have nothing proposed yet.
const PROPOSAL_RETRY_MS = 3000;
function retryProposals() {
  for (const box of document.querySelectorAll("#cards .incident-box[data-offered='0']")) {
    if (!box.querySelector(".incident-result").textContent) decorate(box.closest(".card"));
  }
}

function timeline(detail) {
  const list = el("ol", undefined, "timeline");
  for (const entry of detail.timeline) {
    const item = el("li", `${clock(entry.at)} ${t(entry.kind)} · ${entry.user}` +
                    `${entry.agency_id || entry.regency_code ? " · " + (entry.agency_id || entry.regency_code) : ""}`);
    item.dataset.kind = entry.kind;
    if (entry.text) item.append(el("q", entry.text, "text"));
    list.append(item);
  }
  return list;
}

// The centre's edit form: type, priority, address, narrative, people, and the operator's own
// point (the caller's location is kept beside it, never overwritten).
function fields(detail, result) {
  const kept = forms.get(detail.id);
  if (kept && kept.dataset.dirty) return kept;
  const form = el("form", undefined, "incident-fields");
  form.oninput = () => { form.dataset.dirty = "1"; };
  forms.set(detail.id, form);
  const type = el("select", undefined, "type");
  for (const name of TYPES) type.append(new Option(t(name), name));
  type.value = detail.type;
  const priority = el("select", undefined, "priority");
  for (const p of [1, 2, 3]) priority.append(new Option(`${t("priority")} ${p}`, String(p)));
  priority.value = String(detail.priority);
  const input = (name, value, tag = "input") => {
    const box = el(tag, undefined, name);
    box.value = value || "";
    box.placeholder = t(name);
    box.setAttribute("aria-label", t(name));
    return box;
  };
  const address = input("address", detail.address);
  const narrative = input("narrative", detail.narrative, "textarea");
  const people = input("people", detail.people);
  const point = input("point", detail.lat !== null ? `${detail.lat}, ${detail.lon}` : "");
  const save = el("button", t("save"), "save-incident");
  form.append(type, priority, address, narrative, people, point, save);
  form.onsubmit = (event) => {
    event.preventDefault();
    const body = {type: type.value, priority: Number(priority.value), address: address.value,
                  narrative: narrative.value, people: people.value};
    const [lat, lon] = point.value.split(",").map((v) => Number(v.trim()));
    if (point.value.trim() && Number.isFinite(lat) && Number.isFinite(lon)) Object.assign(body, {lat, lon});
    api(`/api/incidents/${detail.id}`, {method: "PATCH", body: JSON.stringify(body)})
      .then((saved) => { forms.delete(detail.id); show(saved); }).catch((error) => { result.textContent = error.message; });
  };
  return form;
}

function actions(detail, result) {
  const box = el("div", undefined, "incident-actions");
  const note = el("input", undefined, "incident-note");
  note.maxLength = 1000;
  box.append(note, button(t("addnote"), "add-note", async () => {
    show(await post(`/api/incidents/${detail.id}/notes`, {text: note.value})); note.value = "";
  }, result));
  if (me.agency_id) {
    const mine = detail.handoffs.find((h) => h.agency_id === me.agency_id);
    for (const step of AGENCY_STEPS) {
      const b = button(t(step), "step", async () => show(await post(`/api/incidents/${detail.id}/steps`, {step})), result);
      b.dataset.step = step;
      b.disabled = !mine || AGENCY_STEPS.indexOf(step) <= AGENCY_STEPS.indexOf(mine.status);
      box.append(b);
    }
    return box;
  }
  const seen = [detail.regency_code, ...detail.shared_with];
  const agency = el("select", undefined, "agency");
  for (const a of agencies) {
    if (seen.includes(a.regency_code) && (!me.regency_code || a.regency_code === me.regency_code)
        && !detail.agencies.includes(a.id)) agency.append(new Option(`${a.name} (${a.number || a.kind})`, a.id));
  }
  const regency = el("select", undefined, "regency-share");
  for (const r of regencies) if (!seen.includes(r.code)) regency.append(new Option(`${r.code} ${r.name}`, r.code));
  box.append(agency, button(t("dispatch"), "dispatch", async () => show(await post(`/api/incidents/${detail.id}/dispatch`, {agency_id: agency.value})), result),
             regency, button(t("share"), "share", async () => show(await post(`/api/incidents/${detail.id}/share`, {regency_code: regency.value})), result),
             button(t("close"), "close-incident", async () => show(await post(`/api/incidents/${detail.id}/close`)), result));
  return box;
}

function panel(id) {
  let article = document.querySelector(`#incident-list article[data-id="${id}"]`);
  if (!article) {
    article = el("article", undefined, "incident");
    article.dataset.id = id;
    document.getElementById("incident-list").prepend(article);
  }
  return article;
}

// One incident's panel: the summary line always; details, timeline and actions when open.
function show(detail) {
  incidents.set(detail.id, detail);
  const article = panel(detail.id);
  article.dataset.status = detail.status;
  const head = el("div", `#${detail.id} ${t(detail.type)} ${detail.subtype} · ${t("priority")} ${detail.priority} · ` +
                  `${t(detail.status)} · ${detail.regency_code}${detail.shared_with.length ? " + " + detail.shared_with.join(", ") : ""}` +
                  ` · ${detail.calls} ${t("calls")}`, "incident-head");
  head.onclick = () => { if (open.has(detail.id)) open.delete(detail.id); else open.add(detail.id); load(detail.id); };
  const parts = [head];
  if (open.has(detail.id) && detail.timeline) {
    const result = el("p", "", "incident-result");
    const where = el("div", [detail.address, detail.narrative].filter(Boolean).join(" — "), "incident-text");
    const handoffs = el("ul", undefined, "handoffs");
    for (const h of detail.handoffs) {
      const item = el("li", `${h.agency_name}: ${t(h.status)} (${clock(h.dispatched_at)})`);
      item.dataset.agency = h.agency_id;
      if (h.escalated_at && !h.acknowledged_at) item.append(el("strong", ` ${t("alert")}`, "alert"));
      handoffs.append(item);
    }
    parts.push(where, handoffs);
    if (!me.agency_id && detail.status !== "closed") parts.push(fields(detail, result));
    parts.push(el("h4", t("timeline")), timeline(detail), actions(detail, result), result);
  }
  // A note being typed survives the live update that re-renders the panel.
  const typing = article.querySelector(".incident-note");
  article.replaceChildren(...parts);
  const note = article.querySelector(".incident-note");
  if (typing && note) note.value = typing.value;
  document.getElementById("no-incident").hidden = incidents.size > 0;
}

async function load(id) {
  try { show(await api(`/api/incidents/${id}`)); }
  catch (error) { panel(id).remove(); incidents.delete(id); }
}

function alerted(alert) {
  const line = el("li", `${t("alert")}: #${alert.incident_id} ${alert.agency_name} (${Math.round(alert.since_dispatch_s)} s)`);
  line.dataset.incident = alert.incident_id;
  document.getElementById("incident-alerts").prepend(line);
  load(alert.incident_id);
}

function connect() {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${window.location.host}/api/live`);
  let first = true;
  socket.onmessage = (message) => {
    const data = JSON.parse(message.data);
    if (first) { first = false; window.incidentsLive = true; return; }
    if (data.kind === "incident") { load(data.incident.id); refreshProposals(); }
    else if (data.kind === "alert") alerted(data.alert);
  };
  socket.onclose = () => { window.incidentsLive = false; setTimeout(connect, 1000); };
}

function translate() {
  document.querySelector("#incidents h2").textContent = t("incidents");
  document.getElementById("no-incident").textContent = t("none");
  for (const detail of incidents.values()) show(detail);
}

async function main() {
  me = await api("/api/me");
  agencies = await api("/api/agencies");
  const seen = new Map();
  for (const p of await api("/api/regions")) if (!seen.has(p.code)) seen.set(p.code, p);
  regencies = [...seen.values()];
  if (me.agency_id) {
    // An agency user has no phone and no calls: only the incidents handed to them.
    for (const id of ["available", "pause", "pause-reason", "logout-queues", "current"]) {
      document.getElementById(id).hidden = true;
    }
  }
  for (const item of await api("/api/incidents")) { incidents.set(item.id, item); show(item); }
  translate();
  document.getElementById("language").addEventListener("click", () => setTimeout(translate, 0));
  new MutationObserver(decorateAll).observe(document.getElementById("cards"), {childList: true});
  decorateAll();
  setInterval(retryProposals, PROPOSAL_RETRY_MS);
  connect();
}

main();
