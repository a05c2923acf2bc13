// Keeps the monitor's pages live: follows the page's event stream (data-live) and writes the
// new numbers where the page printed the old ones. Without it the pages still work.
(function () {
  "use strict";
  var live = document.body.getAttribute("data-live");
  if (!live || !window.EventSource) return;

  function text(el, value) {
    if (el && el.textContent !== String(value)) el.textContent = String(value);
  }

  function sidecarText(statuses) {
    if (!statuses.length) return "No sidecar of the owning services is registered: no instance can be shown.";
    var missing = statuses.filter(function (s) { return s.state !== "ok"; });
    if (!missing.length) return statuses.length === 1 ? "The sidecar answered." : "All " + statuses.length + " sidecars answered.";
    return missing.length + " of " + statuses.length + " sidecars did not answer: " +
      missing.map(function (s) { return s.instance + " (" + s.state + ": " + (s.detail || "no detail") + ")"; }).join("; ") +
      ". Their instances are not counted here.";
  }

  function sidecars(statuses) {
    var box = document.getElementById("sidecars");
    if (!box || !statuses) return;
    text(box, sidecarText(statuses));
    var ok = statuses.every(function (s) { return s.state === "ok"; }) && statuses.length > 0;
    box.className = "sidecars " + (ok ? "ok" : "warn");
  }

  function counts(root, c) {
    ["active", "completed", "incident", "cancelled"].forEach(function (k) {
      root.querySelectorAll('[data-count="' + k + '"]').forEach(function (el) { text(el, c[k]); });
    });
  }

  function badge(id, what, n) {
    document.querySelectorAll('[data-badge="' + what + '"]').forEach(function (g) {
      if (g.getAttribute("data-for") !== id) return;
      text(g.querySelector("text"), n);
      g.classList.toggle("zero", n === 0);
    });
  }

  var source = new EventSource(live);
  source.addEventListener("models", function (e) {
    var d = JSON.parse(e.data);
    sidecars(d.sidecars);
    d.models.forEach(function (m) {
      document.querySelectorAll("tr[data-process]").forEach(function (row) {
        if (row.getAttribute("data-process") === m.process) counts(row, m.instances);
      });
    });
  });
  source.addEventListener("model", function (e) {
    var d = JSON.parse(e.data);
    if (d.error) return;
    sidecars(d.sidecars);
    counts(document.querySelector(".counts") || document, d.instances);
    Object.keys(d.elements).forEach(function (id) {
      var s = d.elements[id];
      badge(id, "active", s.active);
      badge(id, "completed", s.completed);
      badge(id, "incidents", s.incidents);
      document.querySelectorAll("tr[data-element]").forEach(function (row) {
        if (row.getAttribute("data-element") !== id) return;
        ["active", "completed", "incidents"].forEach(function (k) {
          text(row.querySelector('[data-stat="' + k + '"]'), s[k]);
        });
      });
    });
  });
  var marker = document.getElementById("shown");
  var shown = marker ? marker.getAttribute("data-shown") : null;
  source.addEventListener("instance", function (e) {
    var d = JSON.parse(e.data);
    if (d.error) return;
    // The path, history and incidents are drawn by the server: when they change, reload.
    var now = [d.state, (d.history || []).length, (d.incidents || []).length].join("/");
    if (shown !== null && shown !== now) window.location.reload();
    shown = now;
  });
})();
