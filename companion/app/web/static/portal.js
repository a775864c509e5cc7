// Small enhancements; every page works without this file.
// Countdowns: keep "N d N h N min" current.
(function () {
  function left(until) {
    var s = Math.max(0, Math.floor((Date.parse(until) - Date.now()) / 1000));
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    return (d ? d + " d " : "") + (d || h ? h + " h " : "") + m + " min";
  }
  function tick() {
    var els = document.querySelectorAll("[data-until]");
    for (var i = 0; i < els.length; i++) { els[i].textContent = left(els[i].getAttribute("data-until")); }
  }
  document.addEventListener("DOMContentLoaded", function () { tick(); setInterval(tick, 30000); });
})();
