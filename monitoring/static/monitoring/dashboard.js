/* Refreshes each dashboard part by fetching its HTML fragment; no page reload, nothing from the internet. */
(function () {
  "use strict";
  var root = document.getElementById("monitoring-dashboard");
  var interval = parseInt(root.dataset.refreshMs, 10) || 3000;
  var tick = 0;
  function refresh(part) {
    return fetch(part.dataset.url, {credentials: "same-origin", cache: "no-store",
                                    headers: {"X-Requested-With": "fetch"}})
      .then(function (response) {
        if (response.redirected || response.status !== 200) {
          part.classList.add("mon-stale");
          part.title = response.redirected ? "Session expired: reload the page to log in again." :
                                             "Refresh failed (HTTP " + response.status + ")";
          return;
        }
        return response.text().then(function (html) {
          part.innerHTML = html;
          part.classList.remove("mon-stale");
          part.title = "";
        });
      })
      .catch(function () { part.classList.add("mon-stale"); part.title = "Refresh failed: server unreachable"; });
  }
  function refreshAll() {
    if (document.hidden) { return; }
    tick += 1;
    var due = Array.prototype.filter.call(root.querySelectorAll("[data-part]"), function (part) {
      return tick % (parseInt(part.dataset.every, 10) || 1) === 0;
    });
    Promise.all(due.map(refresh)).then(function () {
      document.getElementById("last-refresh").textContent = new Date().toLocaleTimeString();
    });
  }
  setInterval(refreshAll, interval);
})();
