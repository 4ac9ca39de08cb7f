// One Leaflet map per ring card. No tiles configured: a plain background with the caller's
// point and uncertainty circle, the regencies' reference points and a scale (works offline).
import * as L from "/static/leaflet/leaflet-src.esm.js";

// Shapes drawn by CSS, not glyphs: a kiosk browser may have no emoji font.
const MARKER = {
  handset: {className: "marker marker-handset", html: "<i></i>"},
  network: {className: "marker marker-network", html: "<i></i>"},
};

export function drawMap(element, settings, points, location, label) {
  // A view first: Leaflet adds layers to a map only once it has one. Without a location
  // (none yet, or none at all) the map shows the regencies' reference points.
  const map = L.map(element, {attributionControl: Boolean(settings.tile_url)});
  if (location) {
    map.setView([location.lat, location.lon], 14);
  } else if (points.length) {
    map.fitBounds(L.latLngBounds(points.map((p) => [p.lat, p.lon])), {padding: [10, 10]});
  } else {
    map.setView([0, 0], 1);
  }
  if (settings.tile_url) {
    L.tileLayer(settings.tile_url, {attribution: settings.tile_attribution, maxZoom: 19})
      .addTo(map);
  } else {
    element.classList.add("no-tiles");
  }
  L.control.scale({metric: true, imperial: false}).addTo(map);
  for (const point of points) {
    L.circleMarker([point.lat, point.lon], {radius: 3, className: "reference-point"})
      .bindTooltip(text(`${point.name} (${point.point})`)).addTo(map);
  }
  const layer = L.layerGroup().addTo(map);
  const view = {map, layer};
  if (location) place(view, location, label);
  return view;
}

function text(value) {
  const span = document.createElement("span");
  span.textContent = value;  // config text is shown as text, never parsed as HTML
  return span;
}

export function place(view, location, label) {
  view.layer.clearLayers();
  const where = [location.lat, location.lon];
  const icon = L.divIcon({...MARKER[location.kind], iconSize: [28, 28], iconAnchor: [14, 14]});
  L.marker(where, {icon, title: label, keyboard: false}).addTo(view.layer);
  const radius = location.radius_m || 0;
  if (radius > 0) {
    L.circle(where, {radius, className: `uncertainty ${location.kind}`}).addTo(view.layer);
    view.map.fitBounds(L.latLng(where).toBounds(radius * 2), {maxZoom: 16, padding: [10, 10]});
  } else {
    view.map.setView(where, 14);
  }
}
