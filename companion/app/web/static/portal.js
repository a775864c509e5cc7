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

// A remote clear's progress: while it is on its way, fetch the page again every few seconds and put the new
// progress in place (an aria-live region, so screen readers hear each step); stop once it is final.
(function () {
  function poll(box) {
    var every = parseInt(box.getAttribute("data-refresh"), 10) * 1000;
    setTimeout(function () {
      fetch(window.location.href, {credentials: "same-origin", headers: {"Accept": "text/html"}})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html) {
            var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("clear-live");
            if (fresh) {
              box.innerHTML = fresh.innerHTML;
              if (!fresh.hasAttribute("data-refresh")) { box.removeAttribute("data-refresh"); return; }
            }
          }
          poll(box);
        })
        .catch(function () { poll(box); });
    }, every);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.querySelector("#clear-live[data-refresh]");
    if (box) { poll(box); }
  });
})();
