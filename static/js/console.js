// Tollgate console: keyboard shortcuts, list navigation, claim-lease renewal, JSON search.
// Every action also has a visible button; this file only makes them faster to reach.
(function () {
  "use strict";

  const RENEW_EVERY_MS = 60 * 1000;
  const ACTIVE_WITHIN_MS = 2 * 60 * 1000;
  let lastActivity = Date.now();
  let renewTimer = null;
  let countdownTimer = null;
  let slaTimer = null;
  let undoTimer = null;

  function typingIn(target) {
    const field = target.closest("input, textarea, select, [contenteditable=true]");
    return field !== null && !(field.type === "radio" || field.type === "checkbox");
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

  function announce(text) {
    const region = document.getElementById("announce");
    if (!region) return;
    region.textContent = text;
    region.hidden = false;
  }

  function trigger(key) {
    // A selected row is the whole scope: its own control or nothing, never another row's.
    const row = document.activeElement.closest("[data-row]");
    const control = row
      ? row.querySelector(`[data-shortcut="${key}"]`)
      : document.querySelector(`[data-shortcut="${key}"]:not([disabled])`);
    if (row && control && control.disabled) {
      announce(`The ${row.dataset.name} queue is empty: nothing was claimed.`);
      return true;
    }
    if (!control) return false;
    if (control.dataset.opens) {
      const panel = document.getElementById(control.dataset.opens);
      panel.open = true;
      panel.querySelector("textarea, input:not([type=hidden]), select")?.focus();
      panel.scrollIntoView({ block: "nearest" });
    } else if (control.tagName === "SUMMARY") {
      const panel = control.parentElement;
      panel.open = true;
      (panel.querySelector("[data-autofocus]") ||
        panel.querySelector("input:not([type=hidden]), textarea, select"))?.focus();
    } else {
      control.click();
    }
    return true;
  }

  document.addEventListener("keydown", function (event) {
    lastActivity = Date.now();
    if (event.key === "Escape" && closePanels()) { event.preventDefault(); return; }
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target.matches("details.action textarea")) {
      event.target.form.requestSubmit();
      event.preventDefault();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typingIn(event.target)) return;
    const dialog = document.getElementById("shortcuts");
    if (event.key === "?") { dialog.open ? dialog.close() : dialog.showModal(); event.preventDefault(); return; }
    if (event.key === "j") { moveSelection(1); event.preventDefault(); return; }
    if (event.key === "k") { moveSelection(-1); event.preventDefault(); return; }
    if (event.key === "Enter" && event.target.matches("[data-row][data-href]")) {
      window.location.assign(event.target.dataset.href);
      return;
    }
    if (event.key === "Enter" && event.target.matches("[data-row][data-enter]")) {
      trigger(event.target.dataset.enter);
      event.preventDefault();
      return;
    }
    if (/^[1-9]$/.test(event.key) && pickReason(Number(event.key))) { event.preventDefault(); return; }
    if ("naertxsu".includes(event.key) && event.key.length === 1 && trigger(event.key)) event.preventDefault();
  });

  // In the open reject panel, 1 to 9 pick the policy's reasons; Enter then sends the rejection.
  function pickReason(number) {
    const panel = document.querySelector("#reject-panel[open]");
    const choice = panel?.querySelectorAll("input[type=radio][name=reason_code]")[number - 1];
    if (!choice) return false;
    choice.checked = true;
    panel.querySelector("button[type=submit]").focus();
    return true;
  }

  function closePanels() {
    const open = Array.from(document.querySelectorAll("details.action[open], details#editor[open]"));
    open.forEach(function (panel) {
      panel.open = false;
      if (panel.contains(document.activeElement)) panel.querySelector("summary")?.focus();
    });
    return open.length > 0;
  }

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
      if (clock) clock.textContent = spell(left);
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

  // The live tables are replaced every few seconds: the selected row is found again by its key,
  // so j, k, n and Enter keep acting on the row the operator chose.
  let selectedKey = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    const row = document.activeElement.closest("[data-row][data-key]");
    selectedKey = row && event.detail.target.contains(row) ? row.dataset.key : null;
  });

  function restoreSelection() {
    if (!selectedKey) return;
    const row = document.querySelector(`[data-row][data-key="${CSS.escape(selectedKey)}"]`);
    selectedKey = null;
    row?.focus({ preventScroll: true });
  }

  // A refused form comes back with its reason beside the field: that field (or the reason) gets the focus.
  function focusRefusal() {
    const target = document.querySelector("[data-refused] [aria-invalid=true], [data-refused] [data-focus]");
    if (!target) return;
    target.focus();
    target.scrollIntoView({ block: "center" });
  }

  function setUpClocks() {
    clearInterval(slaTimer);
    const clocks = document.querySelectorAll("[data-due]");
    if (!clocks.length) return;
    const tick = function () {
      clocks.forEach(function (clock) {
        const left = Math.round((new Date(clock.dataset.due).getTime() - Date.now()) / 1000);
        clock.textContent = left < 0 ? `SLA overdue by ${spell(-left)}` : `SLA due in ${spell(left)}`;
        clock.classList.toggle("danger", left < 0);
      });
    };
    slaTimer = setInterval(tick, 1000);
  }

  function spell(seconds) {
    const hours = Math.floor(seconds / 3600);
    const minutes = Math.floor((seconds % 3600) / 60);
    if (hours) return `${hours}h ${String(minutes).padStart(2, "0")}m`;
    if (minutes) return `${minutes}m ${String(seconds % 60).padStart(2, "0")}s`;
    return `${seconds}s`;
  }

  // After a boosted swap htmx scrolls to the top once the settle event has run: focus after that.
  // The Undo of the last decision goes when its delivery is released.
  function setUpUndo() {
    clearInterval(undoTimer);
    const offer = document.querySelector("[data-undo-until]");
    if (!offer) return;
    const until = new Date(offer.dataset.undoUntil).getTime();
    const clock = offer.querySelector("[data-undo-clock]");
    const tick = function () {
      const left = Math.ceil((until - Date.now()) / 1000);
      if (left > 0) { clock.textContent = `Sent in ${left}s unless you undo it.`; return; }
      clearInterval(undoTimer);
      offer.querySelector("form")?.remove();
      clock.textContent = "Sent.";
    };
    tick();
    undoTimer = setInterval(tick, 500);
  }

  function setUpPage() { setUpLease(); setUpClocks(); setUpUndo(); setTimeout(focusRefusal, 0); }

  document.addEventListener("DOMContentLoaded", setUpPage);
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.target === document.body || event.detail.target.id === "main") setUpPage();
    else restoreSelection();
  });
  document.addEventListener("htmx:load", function () { if (selectedKey) setTimeout(restoreSelection, 0); });
})();
