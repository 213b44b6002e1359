// Lookout traffic graphs: every element `.graph[data-port-id]` gets an uPlot chart of
// in/out bits/s fetched from /graph-data/port/<id>?period=<data-period>. The element's
// `data-state` says what happened ("loading", "ok", "empty", "error") so that people and
// browser tests can tell a graph apart from "no data yet".
(function () {
  "use strict";

  var PREFIXES = ["", "k", "M", "G", "T", "P"];
  function si(v) {
    if (v === null || v === undefined || !isFinite(v)) return "-";
    var i = 0, a = Math.abs(v);
    while (a >= 1000 && i < PREFIXES.length - 1) { a /= 1000; v /= 1000; i++; }
    return (i === 0 ? v.toFixed(0) : v.toPrecision(3)) + " " + PREFIXES[i] + "bps";
  }

  function setState(el, state, text) {
    el.setAttribute("data-state", state);
    if (text !== undefined) el.textContent = text;
  }

  function draw(el) {
    var id = el.getAttribute("data-port-id");
    var period = el.getAttribute("data-period") || "day";
    setState(el, "loading", "loading...");
    fetch("/graph-data/port/" + encodeURIComponent(id) + "?period=" + encodeURIComponent(period),
          { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (r.status === 401) { throw new Error("session expired, reload the page"); }
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      })
      .then(function (d) {
        if (d.no_data || !d.timestamps || d.timestamps.length === 0) {
          setState(el, "empty", "no data yet (the graph fills after two polls)");
          return;
        }
        setState(el, "ok", "");
        var width = Math.max(el.clientWidth, 300);
        var opts = {
          width: width,
          height: 200,
          cursor: { drag: { x: true, y: false } },
          scales: { x: { time: true } },
          // UTC like every other time on the pages, so a graph lines up with the event log.
          tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
          axes: [
            {},
            { size: 90, values: function (u, vals) { return vals.map(si); } }
          ],
          series: [
            {},
            { label: "In", stroke: "#0a7d22", fill: "rgba(10,125,34,0.15)", width: 1, value: function (u, v) { return si(v); } },
            { label: "Out", stroke: "#1f4fd1", width: 1, value: function (u, v) { return si(v); } }
          ]
        };
        new uPlot(opts, [d.timestamps, d.series.in_bps, d.series.out_bps], el);
      })
      .catch(function (e) { setState(el, "error", "graph failed: " + e.message); });
  }

  function init() {
    var els = Array.prototype.slice.call(document.querySelectorAll(".graph[data-port-id]"));
    if (typeof uPlot === "undefined") {
      els.forEach(function (el) { setState(el, "error", "graph library failed to load"); });
      return;
    }
    // Devices with many interfaces: only draw what is scrolled into view.
    if ("IntersectionObserver" in window) {
      var io = new IntersectionObserver(function (entries) {
        entries.forEach(function (en) {
          if (en.isIntersecting) { io.unobserve(en.target); draw(en.target); }
        });
      }, { rootMargin: "200px" });
      els.forEach(function (el) { io.observe(el); });
    } else {
      els.forEach(draw);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
