// The caller's own fix (AML/ELS) on a ring card: beside the network location, with its own
// marker, accuracy, age and source. It is never put on the map by itself: the operator
// shows it with the button, and a newer fix only updates the text and offers the button again.
import * as L from "/static/leaflet/leaflet-src.esm.js";

const TEXT = {
  id: {fix: "Lokasi perangkat (AML)", show: "Tampilkan lokasi perangkat", ago: "lalu",
       s: "dtk", min: "mnt", via: "melalui", routed: "Dipindah ke antrean", because: "karena lokasi perangkat",
       unmatched: "Lokasi perangkat tanpa panggilan (mungkin terputus)"},
  en: {fix: "Handset location (AML)", show: "Show handset location", ago: "ago",
       s: "s", min: "min", via: "via", routed: "Moved to queue", because: "by the handset location",
       unmatched: "Handset fixes with no call (the caller may have been cut off)"},
};
const METHOD = {gnss: "GNSS", wifi: "Wi-Fi", cell: "Cell", hybrid: "Hybrid", unknown: "?"};
const UNMATCHED_REFRESH_MS = 5000;

function language() { return document.documentElement.lang === "en" ? "en" : "id"; }
const t = (key) => TEXT[language()][key];

function age(fixedAt) {
  const seconds = Math.max(0, Math.round(Date.now() / 1000 - fixedAt));
  return seconds < 120 ? `${seconds} ${t("s")} ${t("ago")}` : `${Math.round(seconds / 60)} ${t("min")} ${t("ago")}`;
}

function describe(fix) {
  return [t("fix"), `± ${Math.round(fix.accuracy_m)} m`, METHOD[fix.method] || fix.method,
          `${t("via")} ${fix.transport} ${fix.sender}`].join(" · ");
}

export function showHandset(view, card) {
  const e = view.element;
  let box = e.querySelector(".handset");
  if (!box) {
    box = document.createElement("div");
    box.className = "handset";
    box.innerHTML = '<span class="handset-text"></span> <span class="handset-age"></span> ' +
      '<button class="show-handset" type="button"></button> <span class="handset-routed"></span>';
    e.querySelector(".where").after(box);
  }
  const fix = card.handset;
  box.hidden = !fix;
  if (!fix) return;
  box.querySelector(".handset-text").textContent = describe(fix);
  const ageText = box.querySelector(".handset-age");
  ageText.dataset.fixedAt = String(fix.fixed_at);
  ageText.textContent = age(fix.fixed_at);
  box.querySelector(".handset-routed").textContent = fix.routed_to
    ? `${t("routed")} ${fix.routed_to} ${t("because")}` : "";
  const button = box.querySelector(".show-handset");
  button.textContent = t("show");
  button.hidden = view.handsetShown === fix.id;
  button.onclick = () => { place(view, fix); view.handsetShown = fix.id; button.hidden = true; };
}

function place(view, fix) {
  if (!view.map) return;
  const map = view.map.map;
  if (!view.handsetLayer) view.handsetLayer = L.layerGroup().addTo(map);
  view.handsetLayer.clearLayers();
  const where = [fix.lat, fix.lon];
  const icon = L.divIcon({className: "marker marker-handset marker-aml", html: "<i></i>",
                          iconSize: [28, 28], iconAnchor: [14, 14]});
  L.marker(where, {icon, title: t("fix"), keyboard: false}).addTo(view.handsetLayer);
  L.circle(where, {radius: fix.accuracy_m, className: "uncertainty handset"}).addTo(view.handsetLayer);
  map.fitBounds(L.latLng(where).toBounds(Math.max(fix.accuracy_m, 50) * 2), {maxZoom: 17, padding: [10, 10]});
}

async function loadUnmatched() {
  const answer = await fetch("/api/aml/unmatched", {credentials: "same-origin"}).catch(() => null);
  let section = document.getElementById("aml-unmatched");
  if (!answer || !answer.ok) { if (section) section.hidden = true; return; }
  const fixes = await answer.json();
  if (!section) {
    section = document.createElement("section");
    section.id = "aml-unmatched";
    section.innerHTML = "<h2></h2><ol></ol>";
    document.querySelector("aside").append(section);
  }
  section.hidden = false;
  section.querySelector("h2").textContent = t("unmatched");
  section.querySelector("ol").replaceChildren(...fixes.map((fix) => {
    const item = document.createElement("li");
    item.className = "aml-fix";
    item.textContent = `${fix.number || "?"} · ${fix.lat.toFixed(5)}, ${fix.lon.toFixed(5)} · ${describe(fix)} · ${age(fix.fixed_at)}`;
    return item;
  }));
}

setInterval(() => {
  for (const element of document.querySelectorAll(".handset-age[data-fixed-at]")) {
    element.textContent = age(Number(element.dataset.fixedAt));
  }
}, 1000);
loadUnmatched();
setInterval(loadUnmatched, UNMATCHED_REFRESH_MS);
