/* The review page's behaviour: page navigation and zoom of the original, lines added
   and removed in the form, keyboard shortcuts, and a warning before unsaved edits are lost.
   A static file (no inline script), so the page works under a Content-Security-Policy. */
(function () {
  "use strict";
  const root = document.getElementById("review");
  if (!root) { return; }
  const form = document.getElementById("review-form");
  let dirty = false;
  if (form) {
    form.addEventListener("input", function () { dirty = true; });
    form.addEventListener("submit", function (event) {
      const button = event.submitter;
      if (button && button.value === "reject") {
        const reason = document.getElementById("f-decision-reason");
        if (reason && !reason.value.trim()) {
          event.preventDefault();
          reason.focus();
          reason.setCustomValidity("Write the reason for the rejection.");
          reason.reportValidity();
          reason.addEventListener("input", function () { reason.setCustomValidity(""); }, { once: true });
          return;
        }
      }
      dirty = false;
    });
  }

  // -- the original: pages and zoom --------------------------------------------------------
  const image = document.getElementById("page-image");
  let zoom = 1;
  function showPage(page) {
    if (!image) { return; }
    const pages = parseInt(image.dataset.pages, 10);
    if (page < 1 || page > pages) { return; }
    image.dataset.page = String(page);
    image.src = image.dataset.urlPrefix + page + ".png?dpi=" + image.dataset.dpi;
    image.alt = "Page " + page + " of " + pages + " of the original";
    document.getElementById("page-number").textContent = String(page);
    const field = document.getElementById("form-page");
    if (field) { field.value = String(page); }
    const url = new URL(window.location.href);
    url.searchParams.set("page", String(page));
    window.history.replaceState(null, "", url);
  }
  function stepPage(step) { if (image) { showPage(parseInt(image.dataset.page, 10) + step); } }
  function setZoom(step) {
    if (!image) { return; }
    zoom = step === 0 ? 1 : Math.min(4, Math.max(0.5, zoom + step * 0.25));
    image.style.width = (zoom * 100) + "%";
    image.style.maxWidth = "none";
  }
  document.querySelectorAll("[data-page-step]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      stepPage(parseInt(link.dataset.pageStep, 10));
    });
  });
  document.querySelectorAll("[data-zoom]").forEach(function (button) {
    button.addEventListener("click", function () { setZoom(parseInt(button.dataset.zoom, 10)); });
  });

  // -- lines: add and remove -------------------------------------------------------------
  const template = document.getElementById("new-line-template");
  const rows = document.getElementById("line-rows");
  let nextIndex = document.querySelectorAll("tr.rv-new").length;
  function wireRemove(row) {
    const remove = row.querySelector("[data-remove-new]");
    if (remove) { remove.addEventListener("click", function () { row.remove(); dirty = true; }); }
  }
  document.querySelectorAll("tr.rv-new").forEach(wireRemove);
  const add = document.getElementById("add-line");
  if (add && template && rows) {
    add.addEventListener("click", function () {
      while (document.querySelector("tr[data-new-index='" + nextIndex + "']")) { nextIndex += 1; }
      const html = template.innerHTML.split("__i__").join(String(nextIndex));
      const holder = document.createElement("tbody");
      holder.innerHTML = html.trim();
      const row = holder.firstElementChild;
      rows.appendChild(row);
      wireRemove(row);
      nextIndex += 1;
      dirty = true;
      const first = row.querySelector("input");
      if (first) { first.focus(); }
    });
  }
  document.querySelectorAll("input[name=remove]").forEach(function (box) {
    box.addEventListener("change", function () { box.closest("tr").classList.toggle("rv-removed", box.checked); });
  });

  // -- keyboard ------------------------------------------------------------------------------
  function go(url) {
    if (!url) { return; }
    if (dirty && !window.confirm("You have unsaved changes. Leave this invoice without saving?")) { return; }
    dirty = false;
    window.location.href = url;
  }
  function click(id) { const button = document.getElementById(id); if (button) { button.click(); } }
  document.addEventListener("keydown", function (event) {
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s") {
      event.preventDefault();
      click("btn-save");
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    const target = event.target;
    if (target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) { return; }
    switch (event.key) {
      case "n": case "N": go(root.dataset.nextUrl); break;
      case "p": case "P": go(root.dataset.previousUrl); break;
      case "a": case "A":
        if (document.getElementById("btn-approve") && window.confirm("Approve this invoice?")) { click("btn-approve"); }
        break;
      case "[": stepPage(-1); break;
      case "]": stepPage(1); break;
      case "+": case "=": setZoom(1); break;
      case "-": setZoom(-1); break;
      default: return;
    }
    event.preventDefault();
  });
  ["queue-next", "queue-previous"].forEach(function (id) {
    const link = document.getElementById(id);
    if (link) { link.addEventListener("click", function (event) { event.preventDefault(); go(link.href); }); }
  });
  window.addEventListener("beforeunload", function (event) {
    if (dirty) { event.preventDefault(); event.returnValue = ""; }
  });
}());
