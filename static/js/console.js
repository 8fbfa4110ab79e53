// Tollgate console: keyboard shortcuts, list navigation, claim-lease renewal, JSON search.
// Every action also has a visible button; this file only makes them faster to reach.
(function () {
  "use strict";

  const RENEW_EVERY_MS = 60 * 1000;
  const ACTIVE_WITHIN_MS = 2 * 60 * 1000;
  let lastActivity = Date.now();
  let renewTimer = null;
  let countdownTimer = null;

  function typingIn(target) {
    return target.closest("input, textarea, select, [contenteditable=true]") !== null;
  }

  function csrfToken() {
    const headers = document.body.getAttribute("hx-headers");
    try { return JSON.parse(headers)["X-CSRFToken"]; } catch (error) { return ""; }
  }

  function rows() {
    return Array.from(document.querySelectorAll("[data-list] [data-row]"));
  }

  function moveSelection(step) {
    const list = rows();
    if (!list.length) return;
    const current = list.indexOf(document.activeElement.closest("[data-row]"));
    const next = current === -1 ? 0 : Math.min(list.length - 1, Math.max(0, current + step));
    list[next].focus();
  }

  function trigger(key) {
    const scope = document.activeElement.closest("[data-row]") || document;
    const control = scope.querySelector(`[data-shortcut="${key}"]:not([disabled])`) ||
      document.querySelector(`[data-shortcut="${key}"]:not([disabled])`);
    if (!control) return false;
    if (control.dataset.opens) {
      const panel = document.getElementById(control.dataset.opens);
      panel.open = true;
      panel.querySelector("textarea, input:not([type=hidden]), select")?.focus();
      panel.scrollIntoView({ block: "nearest" });
    } else if (control.tagName === "SUMMARY") {
      const panel = control.parentElement;
      panel.open = true;
      panel.querySelector("input:not([type=hidden]), textarea, select")?.focus();
    } else {
      control.click();
    }
    return true;
  }

  document.addEventListener("keydown", function (event) {
    lastActivity = Date.now();
    if (event.ctrlKey || event.metaKey || event.altKey || typingIn(event.target)) return;
    const dialog = document.getElementById("shortcuts");
    if (event.key === "?") { dialog.open ? dialog.close() : dialog.showModal(); event.preventDefault(); return; }
    if (event.key === "j") { moveSelection(1); event.preventDefault(); return; }
    if (event.key === "k") { moveSelection(-1); event.preventDefault(); return; }
    if (event.key === "Enter" && event.target.matches("[data-row][data-href]")) {
      window.location.assign(event.target.dataset.href);
      return;
    }
    if ("naerxs".includes(event.key) && event.key.length === 1 && trigger(event.key)) event.preventDefault();
  });

  ["mousemove", "mousedown", "scroll", "touchstart"].forEach(function (name) {
    document.addEventListener(name, function () { lastActivity = Date.now(); }, { passive: true });
  });

  document.addEventListener("click", function (event) {
    if (event.target.matches("[data-shortcuts-open]")) document.getElementById("shortcuts").showModal();
  });

  document.addEventListener("input", function (event) {
    if (event.target.matches("[data-filter-target]")) {
      const block = document.getElementById(event.target.dataset.filterTarget);
      if (!block.dataset.full) block.dataset.full = block.textContent;
      const needle = event.target.value.toLowerCase();
      block.textContent = needle
        ? block.dataset.full.split("\n").filter((line) => line.toLowerCase().includes(needle)).join("\n")
        : block.dataset.full;
    }
  });

  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-select-all]")) {
      event.target.closest("table").querySelectorAll("tbody input[type=checkbox]")
        .forEach((box) => { box.checked = event.target.checked; });
    }
  });

  function showExpired() {
    document.querySelector("[data-lease-expired]")?.removeAttribute("hidden");
    document.querySelectorAll(".actions button, #editor button").forEach((button) => { button.disabled = true; });
  }

  function setUpLease() {
    clearInterval(renewTimer);
    clearInterval(countdownTimer);
    const item = document.querySelector("[data-renew-url]");
    if (!item) return;
    let expires = new Date(item.dataset.leaseExpires).getTime();
    const clock = item.querySelector("[data-countdown]");
    countdownTimer = setInterval(function () {
      const left = Math.round((expires - Date.now()) / 1000);
      if (left <= 0) { clearInterval(countdownTimer); clearInterval(renewTimer); showExpired(); return; }
      if (clock) clock.textContent = left >= 60 ? `${Math.floor(left / 60)}m ${String(left % 60).padStart(2, "0")}s` : `${left}s`;
    }, 1000);
    renewTimer = setInterval(async function () {
      if (Date.now() - lastActivity > ACTIVE_WITHIN_MS) return;
      const answer = await fetch(item.dataset.renewUrl, { method: "POST", headers: { "X-CSRFToken": csrfToken() } });
      if (answer.ok) {
        expires = new Date((await answer.json()).lease_expires_at).getTime();
      } else if (answer.status === 409) {
        clearInterval(renewTimer); showExpired();
      }
    }, RENEW_EVERY_MS);
  }

  document.addEventListener("DOMContentLoaded", setUpLease);
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.target === document.body || event.detail.target.id === "main") setUpLease();
  });
})();
