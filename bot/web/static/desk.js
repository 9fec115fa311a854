// Keyboard shortcuts for the review queue (1-4 decide the current pair, j/k move between
// pairs) and a confirmation before destructive forms. No build step, no dependencies.
(function () {
  "use strict";
  var current = 0;

  function cards() { return Array.prototype.slice.call(document.querySelectorAll(".card")); }

  function select(index) {
    var all = cards();
    if (!all.length) { return; }
    current = Math.max(0, Math.min(index, all.length - 1));
    all.forEach(function (card, i) { card.classList.toggle("current", i === current); });
    all[current].scrollIntoView({ block: "start" });
    all[current].focus({ preventScroll: true });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (cards().length) { select(0); }
    document.querySelectorAll("form.confirm").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm") || "Точно?")) { event.preventDefault(); }
      });
    });
    cards().forEach(function (card, i) {
      card.addEventListener("click", function () { current = i; select(i); });
    });
  });

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (target && /^(INPUT|SELECT|TEXTAREA)$/.test(target.tagName)) { return; }
    var all = cards();
    if (!all.length) { return; }
    if (event.key === "j") { select(current + 1); event.preventDefault(); return; }
    if (event.key === "k") { select(current - 1); event.preventDefault(); return; }
    var button = all[current].querySelector('button[data-key="' + event.key + '"]');
    if (button && !button.disabled) {
      event.preventDefault();
      button.click();
    }
  });
})();
