// gatehouse console: small progressive enhancements. Every page works
// without this file.
"use strict";
document.addEventListener("click", function (ev) {
  var b = ev.target.closest("[data-copy]");
  if (!b || !navigator.clipboard) return;
  var el = document.getElementById(b.getAttribute("data-copy"));
  if (!el) return;
  navigator.clipboard.writeText(el.textContent.trim()).then(function () {
    var label = b.textContent;
    b.textContent = b.getAttribute("data-copied") || document.body.dataset.copied || "Copied";
    setTimeout(function () { b.textContent = label; }, 1500);
  });
});
// A form sent once is not sent twice by a double click.
document.addEventListener("submit", function (ev) {
  var f = ev.target;
  if (f.dataset.sent) { ev.preventDefault(); return; }
  f.dataset.sent = "1";
  f.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
});
// A page restored from the back-forward cache takes forms again.
window.addEventListener("pageshow", function (ev) {
  if (!ev.persisted) return;
  document.querySelectorAll("form[data-sent]").forEach(function (f) {
    delete f.dataset.sent;
    f.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = false; });
  });
});
// The Administration page's drawer: focus moves into it, and Escape
// closes it (its close link, which works without this).
(function () {
  var d = document.getElementById("drawer");
  if (!d) return;
  if (!d.querySelector("[autofocus]")) {
    var h = d.querySelector("h2");
    if (h) { h.setAttribute("tabindex", "-1"); h.focus(); }
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape" && d.dataset.close) window.location.href = d.dataset.close;
  });
})();
