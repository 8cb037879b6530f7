// The moderator page: flag queue, approvals, failed processing and the live questions, kept
// current by polling. Every action is a real <button>; the keys below press those buttons.
"use strict";

(() => {
  const { h } = Live;
  const page = Live.pageData();
  const urls = page.urls;
  const POLL_MS = 1500;
  // Keys press the current item's button of that action; n the "Now answering" toggle either way.
  const KEYS = { m: "merge", d: "dismiss", a: "approve", h: "hide", n: "now" };
  const $ = (id) => document.getElementById(id);

  let selectedKey = null;
  let selectedIndex = 0;
  const picked = new Set(); // ids of the open flags ticked for a bulk dismiss
  // The question whose answer is being written: {id, draft}. Its row keeps its data meanwhile, so
  // a poll does not rebuild the form under the moderator's typing.
  let writing = null;

  function say(message, kind) {
    const status = $("mod-status");
    status.textContent = message;
    status.className = `status ${kind || ""}`;
  }

  function time(iso) {
    return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function badge(text, kind) {
    return h("span", { class: `badge badge-${kind}`, text });
  }

  function meta(q) {
    return h(
      "p",
      { class: "meta" },
      `#${q.id} · ${q.name || "Anonymous"} · ${time(q.created_at)} · ${q.votes} vote${q.votes === 1 ? "" : "s"}`,
      q.now_answering ? badge("now answering", "now") : null,
      q.pinned ? badge("pinned", "pinned") : null,
      q.answered ? badge("answered", "answered") : null,
      q.edited ? badge("edited by its asker", "processing") : null,
      q.status === "awaiting_approval" ? badge("awaiting approval", "processing") : null,
      q.state !== "processed" ? badge(q.state, "processing") : null,
      q.sentiment ? badge(q.sentiment.label, "processing") : null,
    );
  }

  function button(label, action, extra) {
    return h("button", { type: "button", dataset: { action, control: label }, ...(extra || {}) }, label);
  }

  function item(kind, id, ...children) {
    return h("li", { class: "item", tabindex: "-1", dataset: { kind, id: String(id) } }, ...children);
  }

  // Open flags carry a checkbox (bulk dismiss) and the verdict buttons; decided ones say who decided.
  function renderFlag(f) {
    const open = f.status === "open";
    const li = item(
      "flag",
      f.id,
      h(
        "div",
        { class: "flag-head" },
        open
          ? h("input", {
              type: "checkbox",
              class: "pick",
              checked: picked.has(f.id),
              "aria-label": `Select flag #${f.id}`,
              dataset: { control: "pick" },
            })
          : null,
        h("span", { class: "similarity", text: Live.percent(f.similarity) }),
        badge(f.kind, f.kind),
        open ? null : badge(f.status, "decided"),
        h("span", {
          class: "muted",
          text: open
            ? `similar · raised ${time(f.created_at)}`
            : `similar · ${f.status} ${f.decided_at ? time(f.decided_at) : ""}${f.decided_by ? ` by ${f.decided_by}` : " with a merge"}`,
        }),
      ),
      h(
        "div",
        { class: "pair" },
        h("div", {}, h("p", { class: "label", text: "New question" }), h("p", { class: "text", text: f.question.text }), meta(f.question)),
        h("div", {}, h("p", { class: "label", text: "Asked before" }), h("p", { class: "text", text: f.matched.text }), meta(f.matched)),
      ),
      open
        ? h(
            "div",
            { class: "actions" },
            button("Merge", "merge", { title: "Merge the new question into the earlier one (m)" }),
            button("Dismiss", "dismiss", { class: "secondary", title: "Not a duplicate (d)" }),
            button("Hide new", "hide", { class: "danger", title: "Hide the new question (h)" }),
          )
        : null,
    );
    li.dataset.question = String(f.question.id);
    return li;
  }

  function row(kind, q, ...actions) {
    return item(
      kind,
      q.id,
      h(
        "div",
        { class: "row-item" },
        h("div", { class: "body" }, h("p", { class: "text", text: q.text }), meta(q)),
        h("div", { class: "actions" }, ...actions),
      ),
    );
  }

  function renderAwaiting(q) {
    return row("awaiting", q, button("Approve", "approve"), button("Hide", "hide", { class: "danger" }));
  }

  function renderFailed(q) {
    const li = row("failed", q, button("Retry", "retry"));
    li.querySelector(".body").append(
      h("p", { class: "error-text", text: `${q.attempts} attempt${q.attempts === 1 ? "" : "s"}: ${q.last_error || "no error kept"}` }),
    );
    return li;
  }

  function renderVisible(q) {
    if (q.writing) return renderWriting(q);
    const li = row(
      "visible",
      q,
      button("Now answering", q.now_answering ? "not_now" : "now", {
        class: "secondary",
        "aria-pressed": String(q.now_answering),
        title: "Show it on every page as the question on stage (n)",
      }),
      button(q.answer ? "Edit answer" : "Write answer", "write", { class: "secondary" }),
      button("Answered", q.answered ? "unanswer" : "answer", { class: "secondary", "aria-pressed": String(q.answered) }),
      button("Pin", q.pinned ? "unpin" : "pin", { class: "secondary", "aria-pressed": String(q.pinned) }),
      button("Hide", "hide", { class: "danger" }),
    );
    if (q.answer) {
      li.querySelector(".body").append(
        h(
          "div",
          { class: "answer" },
          h("p", { class: "answer-label", text: q.answered ? "Answer" : "Answer (not shown: marked not answered)" }),
          h("p", { class: "answer-text", text: q.answer }),
        ),
      );
    }
    return li;
  }

  // A question's row while its answer is written: the form, shown to attendees once saved.
  function renderWriting(q) {
    const field = Live.draftField(
      {
        class: "edit-text",
        rows: "4",
        maxlength: String(page.maxAnswerChars),
        "aria-label": `Answer to: ${q.text}`,
        dataset: { control: "answer-text" },
      },
      writing,
    );
    return item(
      "visible",
      q.id,
      h(
        "form",
        { class: "edit-form", dataset: { form: "answer" } },
        h("p", { class: "text", text: q.text }),
        field,
        h("p", { class: "edit-note muted", text: "Attendees see it under the question, which is marked answered." }),
        h(
          "div",
          { class: "edit-buttons" },
          h("button", { type: "submit", dataset: { control: "save-answer" }, text: "Save answer" }),
          button("Cancel", "cancel-answer", { class: "secondary" }),
        ),
      ),
    );
  }

  function renderHidden(q) {
    return row("hidden", q, button("Show", "show", { class: "secondary" }));
  }

  function fill(name, rows, keyPrefix, render, emptyText) {
    Live.syncList($(name), rows.map((r) => ({ key: `${keyPrefix}-${r.id}`, data: r })), render);
    $(`${name}-count`).textContent = rows.length ? `(${rows.length})` : "";
    const empty = $(`${name}-empty`);
    empty.textContent = emptyText;
    empty.hidden = rows.length > 0;
  }

  // --- selection and keys ----------------------------------------------------------------

  function allItems() {
    return Array.from(document.querySelectorAll("li.item"));
  }

  function select(node, focus) {
    for (const other of document.querySelectorAll("li.item.selected")) other.classList.remove("selected");
    if (!node) return;
    node.classList.add("selected");
    selectedKey = node.dataset.key;
    selectedIndex = allItems().indexOf(node);
    if (focus) {
      node.focus({ preventScroll: true });
      node.scrollIntoView({ block: "nearest" });
    }
  }

  // After an update the selected item may be gone (merged, approved...): its successor takes over,
  // and the keyboard focus follows when it was lost with the removed node.
  function restoreSelection() {
    if (selectedKey === null) return;
    const items = allItems();
    const node = items.find((n) => n.dataset.key === selectedKey) || items[Math.min(selectedIndex, items.length - 1)];
    const lost = !document.activeElement || document.activeElement === document.body;
    select(node || null, lost && Boolean(node));
  }

  function currentItem() {
    const active = document.activeElement;
    const around = active && active.closest ? active.closest("li.item") : null;
    return around || allItems().find((n) => n.dataset.key === selectedKey) || null;
  }

  document.addEventListener("focusin", (event) => {
    const node = event.target.closest("li.item");
    if (node && node.dataset.key !== selectedKey) select(node, false);
  });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    if (event.target.closest("input:not([type=checkbox]), textarea, select, [contenteditable]")) return;
    if (event.key === "/") {
      event.preventDefault();
      $("flag-search").focus();
      return;
    }
    if (event.key === "x") {
      const box = currentItem() && currentItem().querySelector("input.pick");
      if (box) {
        event.preventDefault();
        box.click();
      }
      return;
    }
    if (event.key === "j" || event.key === "k") {
      const items = allItems();
      if (!items.length) return;
      const current = items.indexOf(currentItem());
      const next = current < 0 ? 0 : Math.max(0, Math.min(items.length - 1, current + (event.key === "j" ? 1 : -1)));
      select(items[next], true);
      event.preventDefault();
      return;
    }
    const action = KEYS[event.key];
    const node = currentItem();
    if (!action || !node) return;
    const target = node.querySelector(
      action === "now" ? 'button[data-control="Now answering"]' : `button[data-action="${action}"]`,
    );
    if (target && !target.disabled) {
      event.preventDefault();
      target.click();
    }
  });

  // --- actions ---------------------------------------------------------------------------

  const DONE = {
    merge: "Merged",
    dismiss: "Dismissed",
    approve: "Approved",
    hide: "Hidden",
    show: "Shown again",
    answer: "Marked answered",
    unanswer: "Marked not answered",
    now: "On stage now",
    not_now: "Off the stage",
    pin: "Pinned",
    unpin: "Unpinned",
    retry: "Processing again",
  };

  document.addEventListener("click", async (event) => {
    const target = event.target.closest("li.item button[data-action]");
    // Not `disabled` while busy: disabling the focused button would throw the keyboard focus away.
    if (!target || target.getAttribute("aria-busy") === "true") return;
    const node = target.closest("li.item");
    const action = target.dataset.action;
    const isFlag = node.dataset.kind === "flag";
    if (action === "write" || action === "cancel-answer") {
      writeAnswer(action === "write" ? Number(node.dataset.id) : null);
      return;
    }
    let res;
    target.setAttribute("aria-busy", "true");
    if (isFlag && (action === "merge" || action === "dismiss")) {
      res = await Live.call("POST", Live.withId(urls[action], node.dataset.id));
    } else {
      const questionId = isFlag ? node.dataset.question : node.dataset.id;
      res = await Live.call("POST", Live.withId(urls.moderate, questionId), { action });
    }
    target.removeAttribute("aria-busy");
    if (res.ok) say(`${DONE[action]}.`, "ok");
    else say(`Could not ${action}: ${res.data.error}`, "error");
    if (res.ok && isFlag && (action === "merge" || action === "dismiss")) dropFlags([node.dataset.id]);
    poller.now();
  });

  // --- written answers -------------------------------------------------------------------

  let visibleRows = [];

  function visibleData() {
    return visibleRows.map((q) => (writing && writing.id === q.id ? { id: q.id, text: q.text, writing: true } : q));
  }

  // Open the answer form of question `id` (null: close it), then focus its text or the button.
  function writeAnswer(id) {
    const was = writing;
    const q = visibleRows.find((r) => r.id === id);
    writing = q ? { id, draft: q.answer || "" } : null;
    fill("visible", visibleData(), "vis", renderVisible, "No questions yet.");
    const rowId = writing ? writing.id : was && was.id;
    const node = $("visible").querySelector(`li[data-key="vis-${rowId}"]`);
    const target = node && node.querySelector(writing ? "textarea" : 'button[data-action="write"]');
    if (target) target.focus();
  }

  $("visible").addEventListener("submit", async (event) => {
    const form = event.target.closest("form[data-form=answer]");
    if (!form || !writing) return;
    event.preventDefault();
    const save = form.querySelector("button[type=submit]");
    save.setAttribute("aria-busy", "true");
    const res = await Live.call("POST", Live.withId(urls.answer, writing.id), { text: writing.draft });
    save.removeAttribute("aria-busy");
    if (!res.ok) {
      say(`Could not save the answer: ${res.data.error}`, "error");
      form.querySelector("textarea").focus();
      return;
    }
    say(res.data.answer ? "Answer saved: attendees see it now." : "Answer removed.", "ok");
    const id = writing.id;
    visibleRows = visibleRows.map((r) => (r.id === id ? res.data : r));
    writeAnswer(null);
    poller.now();
  });

  $("visible").addEventListener("keydown", (event) => {
    if (event.key === "Escape" && writing && event.target.closest("form[data-form=answer]")) writeAnswer(null);
  });

  // Flags decided on this page leave the list at once, not at the next poll; a poll that was
  // already under way may still list them, so its answer leaves them out.
  const decided = new Map(); // flag id -> performance.now() of the verdict

  function dropFlags(ids) {
    const now = performance.now();
    for (const id of ids.map(Number)) {
      decided.set(id, now);
      picked.delete(id);
      const node = $("flags").querySelector(`li[data-key="flag-${id}"]`);
      if (node) node.remove();
    }
    const left = $("flags").children.length;
    $("flags-count").textContent = left ? `(${left})` : "";
    if (!left) {
      $("flags-empty").textContent = "No open flags.";
      $("flags-empty").hidden = false;
    }
    restoreSelection();
    updateBulk();
  }

  function notDecidedSince(flags, started) {
    for (const [id, at] of decided) if (at < started) decided.delete(id); // the server knows by now
    return flags.filter((f) => !decided.has(f.id));
  }

  // --- bulk dismiss ----------------------------------------------------------------------

  const selectAll = $("select-all");
  const dismissSelected = $("dismiss-selected");

  function shownBoxes() {
    return Array.from(document.querySelectorAll("#flags input.pick"));
  }

  function updateBulk() {
    const boxes = shownBoxes();
    const ticked = boxes.filter((b) => b.checked).length;
    selectAll.checked = boxes.length > 0 && ticked === boxes.length;
    selectAll.indeterminate = ticked > 0 && ticked < boxes.length;
    dismissSelected.disabled = picked.size === 0;
    dismissSelected.textContent = picked.size ? `Dismiss selected (${picked.size})` : "Dismiss selected";
  }

  document.addEventListener("change", (event) => {
    const box = event.target.closest("#flags input.pick");
    if (!box) return;
    const id = Number(box.closest("li.item").dataset.id);
    if (box.checked) picked.add(id);
    else picked.delete(id);
    updateBulk();
  });

  selectAll.addEventListener("change", () => {
    for (const box of shownBoxes()) {
      box.checked = selectAll.checked;
      const id = Number(box.closest("li.item").dataset.id);
      if (box.checked) picked.add(id);
      else picked.delete(id);
    }
    updateBulk();
  });

  dismissSelected.addEventListener("click", async () => {
    if (!picked.size || dismissSelected.getAttribute("aria-busy") === "true") return;
    dismissSelected.setAttribute("aria-busy", "true");
    const res = await Live.call("POST", dismissSelected.dataset.url, { ids: Array.from(picked) });
    dismissSelected.removeAttribute("aria-busy");
    if (res.ok) {
      dropFlags(res.data.dismissed);
      const n = res.data.dismissed.length;
      const skipped = res.data.skipped.length;
      say(`Dismissed ${n} flag${n === 1 ? "" : "s"}${skipped ? ` (${skipped} already decided)` : ""}.`, "ok");
      picked.clear();
    } else {
      say(`Could not dismiss: ${res.data.error}`, "error");
    }
    poller.now();
  });

  // --- filters -----------------------------------------------------------------------------

  // The server filters (status, kind, q) and orders: duplicates before related, closest first, so
  // the likeliest merges lead the queue and the order stays put between polls (j/k do not jump).
  const search = $("flag-search");
  const kindSelect = $("flag-kind");
  const statusSelect = $("flag-status");
  kindSelect.value =
    localStorage.getItem("asktwice.flagKind") ?? (localStorage.getItem("asktwice.onlyDuplicates") === "1" ? "duplicate" : "");
  let typing = null;
  search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => poller.now(), 250);
  });
  search.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && search.value) {
      search.value = "";
      poller.now();
    } else if (event.key === "Enter") {
      event.preventDefault();
      poller.now();
    }
  });
  $("flag-filters").addEventListener("submit", (event) => event.preventDefault());
  kindSelect.addEventListener("change", () => {
    localStorage.setItem("asktwice.flagKind", kindSelect.value);
    poller.now();
  });
  statusSelect.addEventListener("change", () => poller.now());

  function flagsUrl() {
    const params = new URLSearchParams({ status: statusSelect.value });
    if (kindSelect.value) params.set("kind", kindSelect.value);
    const q = search.value.trim();
    if (q) params.set("q", q);
    return `${urls.flags}?${params}`;
  }

  function fillFlags(data, started) {
    const flags = notDecidedSince(data.flags, started);
    const filtered = search.value.trim() || kindSelect.value;
    const empty = filtered ? "No flags match." : statusSelect.value === "open" ? "No open flags." : `No ${statusSelect.value} flags.`;
    fill("flags", flags, "flag", renderFlag, empty);
    if (data.total > data.flags.length) $("flags-count").textContent = `(${flags.length} of ${data.total})`;
    const shown = new Set(flags.filter((f) => f.status === "open").map((f) => f.id));
    for (const id of picked) if (!shown.has(id)) picked.delete(id); // only what the page shows
    $("flag-bulk").hidden = shown.size === 0;
    updateBulk();
  }

  // --- polling ---------------------------------------------------------------------------

  // performance.measure("moderate:render") times the last poll's DOM update (the tests read it).
  async function refresh() {
    const started = performance.now();
    const [flags, queue, listing] = await Promise.all([
      Live.call("GET", flagsUrl()),
      Live.call("GET", urls.queue),
      Live.call("GET", `${urls.questions}?sort=votes`),
    ]);
    const failed = [flags, queue, listing].find((r) => !r.ok);
    if (failed) {
      say(failed.status === 0 ? "Offline: retrying…" : `Cannot load: ${failed.data.error}`, "error");
      return;
    }
    if ($("mod-status").textContent === "Offline: retrying…") say("");
    const start = performance.now();
    fillFlags(flags.data, started);
    fill("awaiting", queue.data.awaiting_approval, "aw", renderAwaiting, "Nothing awaits approval.");
    fill("failed", queue.data.failed, "fail", renderFailed, "No failures.");
    visibleRows = listing.data.questions;
    fill("visible", visibleData(), "vis", renderVisible, "No questions yet.");
    fill("hidden", queue.data.hidden, "hid", renderHidden, "Nothing hidden.");
    restoreSelection();
    performance.clearMeasures("moderate:render"); // only the last one: a page stays open for hours
    performance.measure("moderate:render", { start });
  }

  const poller = Live.poll(refresh, POLL_MS);
})();
