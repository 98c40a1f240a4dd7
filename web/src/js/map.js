// The map (Leaflet, served by the API from web/node_modules): a plain background unless
// a tile URL is configured; zones by kind, the recent track with accuracy circles and
// gaps (GET /subjects/{id}/track), the alert's evidence fixes; a scale bar and a legend.
import * as L from "/console/vendor/leaflet/leaflet-src.esm.js";
import { t } from "./i18n.js";

const STYLE = {
  inclusion: { color: "#1b7f3b", weight: 2, fillOpacity: 0.08, dashArray: null },
  exclusion: { color: "#c62828", weight: 2, fillOpacity: 0.15, dashArray: null },
  victim: { color: "#6a1b9a", weight: 2, fillOpacity: 0.2, dashArray: "6 4" },
};

export class MonitorMap {
  constructor(element, { tileUrl, tileAttribution } = {}) {
    this.map = L.map(element, { zoomControl: true, attributionControl: Boolean(tileUrl), preferCanvas: false })
      .setView([41.2995, 69.2401], 12);
    if (tileUrl) L.tileLayer(tileUrl, { maxZoom: 19, attribution: tileAttribution || "" }).addTo(this.map);
    else element.classList.add("plain");
    L.control.scale({ metric: true, imperial: false, position: "bottomleft" }).addTo(this.map);
    this.zones = L.featureGroup().addTo(this.map);
    this.track = L.featureGroup().addTo(this.map);
    this.evidence = L.featureGroup().addTo(this.map);
    this.draft = L.featureGroup().addTo(this.map);
    this.hidden = 0;
    this.legend = L.control({ position: "topright" });
    this.legend.onAdd = () => { this.legendEl = L.DomUtil.create("div", "legend"); this.renderLegend(); return this.legendEl; };
    this.legend.addTo(this.map);
    this.clickHandler = null;
    this.map.on("click", (e) => this.clickHandler?.(e.latlng));
  }

  renderLegend() {
    if (!this.legendEl) return;
    const row = (cls, key) => `<div><span class="key ${cls}"></span>${t(key)}</div>`;
    this.legendEl.innerHTML = row("inclusion", "legend_inclusion") + row("exclusion", "legend_exclusion")
      + (this.showVictims ? row("victim", "legend_victim") : "") + row("track", "legend_track")
      + row("gap", "legend_gap") + row("context", "legend_context") + row("evidence", "legend_evidence")
      + (this.hidden ? `<div class="hidden-note">${this.hidden} ${t("hidden_zones")}</div>` : "");
  }

  setZones(zones) {
    this.zones.clearLayers();
    this.hidden = 0;
    this.showVictims = false;
    for (const z of zones) {
      if (!z.geometry) { this.hidden += 1; continue; }
      if (z.victim_sensitive) this.showVictims = true;
      const style = STYLE[z.victim_sensitive ? "victim" : z.kind] || STYLE.exclusion;
      const label = `${z.name} (${t(z.kind)})`;
      let layer;
      if (z.geometry.type === "Point") {
        const [lon, lat] = z.geometry.coordinates;
        layer = L.circle([lat, lon], { radius: z.radius_m || 1, ...style });
      } else {
        layer = L.geoJSON(z.geometry, { style: () => style });
      }
      layer.bindTooltip(label, { sticky: true, className: "zone-label" });
      layer.addTo(this.zones);
    }
    this.renderLegend();
  }

  /** The GeoJSON of GET /subjects/{id}/track: its continuous stretches as lines, its gap
   * features dashed grey (the path there is unknown), each fix with its accuracy circle. */
  setTrackCollection(collection) {
    this.track.clearLayers();
    for (const f of collection?.features || []) {
      const p = f.properties || {};
      if (!f.geometry) continue;
      if (f.geometry.type === "LineString") {
        const line = f.geometry.coordinates.map(([lon, lat]) => [lat, lon]);
        if (p.kind === "gap") {
          L.polyline(line, { color: "#757575", weight: 2, dashArray: "4 6", className: "track-gap" })
            .bindTooltip(`${t("legend_gap")}: ${Math.round((p.duration_s || 0) / 60)} min`).addTo(this.track);
        } else {
          L.polyline(line, { color: "#1565c0", weight: 3, className: "track-stretch" }).addTo(this.track);
        }
      } else if (f.geometry.type === "Point" && p.kind === "fix") {
        const [lon, lat] = f.geometry.coordinates;
        if (p.accuracy_m) L.circle([lat, lon], { radius: p.accuracy_m, color: "#1565c0", weight: 1, fillOpacity: 0.05 }).addTo(this.track);
        L.circleMarker([lat, lon], { radius: 3, color: "#0d47a1", weight: 1, fillOpacity: 1 }).addTo(this.track);
      }
    }
  }

  setEvidence(collection) {
    this.evidence.clearLayers();
    for (const f of collection?.features || []) {
      const p = f.properties || {};
      if (p.kind !== "fix" || !f.geometry) continue;
      const [lon, lat] = f.geometry.coordinates;
      const main = p.role === "alert_fix";
      L.circleMarker([lat, lon], { radius: main ? 10 : 5, color: main ? "#b71c1c" : "#ef6c00", weight: main ? 3 : 2,
        fillOpacity: main ? 0.35 : 0.6 }).bindTooltip(`${p.device_time} ±${p.accuracy_m ?? "?"} m`).addTo(this.evidence);
    }
  }

  fit() {
    const bounds = L.latLngBounds([]);
    for (const g of [this.zones, this.track, this.evidence, this.draft]) {
      const b = g.getBounds();
      if (b.isValid()) bounds.extend(b);
    }
    if (bounds.isValid()) this.map.fitBounds(bounds, { padding: [30, 30], maxZoom: 17, animate: false });
  }

  /** The zone editor's draft: a circle (centre + radius) or a polygon's corners. */
  drawDraft({ shape, points, radius, kind }) {
    this.draft.clearLayers();
    const style = { ...(STYLE[kind] || STYLE.exclusion), dashArray: "3 3" };
    if (shape === "circle" && points.length) L.circle(points[0], { radius, ...style }).addTo(this.draft);
    else if (points.length > 2) L.polygon(points, style).addTo(this.draft);
    else for (const p of points) L.circleMarker(p, { radius: 4, ...style }).addTo(this.draft);
  }

  /** The replay's marker at [lat, lon] (null: none). */
  setReplayMarker(latlng) {
    if (!latlng) { this.replayMarker?.remove(); this.replayMarker = null; return; }
    if (!this.replayMarker) {
      this.replayMarker = L.circleMarker(latlng, { radius: 8, color: "#ff6f00", weight: 3, fillColor: "#ffca28",
        fillOpacity: 0.9, className: "replay-marker" }).addTo(this.map);
    } else this.replayMarker.setLatLng(latlng);
    this.replayMarker.bringToFront(); // above the evidence rings
  }

  invalidate() { this.map.invalidateSize(); }
}
