// The moderator page: flag queue, approvals, failed processing and the live questions, kept
// current by polling. Every action is a real <button>; the keys below press those buttons.
"use strict";

(() => {
  const { h } = Live;
  const page = Live.pageData();
  const urls = page.urls;
  const POLL_MS = 1500;
  const KEYS = { m: "merge", d: "dismiss", a: "approve", h: "hide" };
  const $ = (id) => document.getElementById(id);

  let selectedKey = null;
  let selectedIndex = 0;

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
      q.pinned ? badge("pinned", "pinned") : null,
      q.answered ? badge("answered", "answered") : null,
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

  function renderFlag(f) {
    const li = item(
      "flag",
      f.id,
      h(
        "div",
        { class: "flag-head" },
        h("span", { class: "similarity", text: Live.percent(f.similarity) }),
        badge(f.kind, f.kind),
        h("span", { class: "muted", text: `similar · raised ${time(f.created_at)}` }),
      ),
      h(
        "div",
        { class: "pair" },
        h("div", {}, h("p", { class: "label", text: "New question" }), h("p", { class: "text", text: f.question.text }), meta(f.question)),
        h("div", {}, h("p", { class: "label", text: "Asked before" }), h("p", { class: "text", text: f.matched.text }), meta(f.matched)),
      ),
      h(
        "div",
        { class: "actions" },
        button("Merge", "merge", { title: "Merge the new question into the earlier one (m)" }),
        button("Dismiss", "dismiss", { class: "secondary", title: "Not a duplicate (d)" }),
        button("Hide new", "hide", { class: "danger", title: "Hide the new question (h)" }),
      ),
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
    return row(
      "visible",
      q,
      button("Answered", q.answered ? "unanswer" : "answer", { class: "secondary", "aria-pressed": String(q.answered) }),
      button("Pin", q.pinned ? "unpin" : "pin", { class: "secondary", "aria-pressed": String(q.pinned) }),
      button("Hide", "hide", { class: "danger" }),
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
    if (event.target.closest("input, textarea, select, [contenteditable]")) return;
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
    const target = node.querySelector(`button[data-action="${action}"]`);
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
    poller.now();
  });

  // --- polling ---------------------------------------------------------------------------

  // Duplicates before related flags, closest first: the likeliest merges lead the queue, and the
  // order stays put between polls, so j/k do not jump.
  let onlyDuplicates = localStorage.getItem("asktwice.onlyDuplicates") === "1";
  function queueOrder(flags) {
    return flags
      .filter((f) => !onlyDuplicates || f.kind === "duplicate")
      .sort((a, b) => (a.kind === b.kind ? b.similarity - a.similarity || a.id - b.id : a.kind === "duplicate" ? -1 : 1));
  }
  const onlyToggle = $("only-duplicates");
  onlyToggle.setAttribute("aria-pressed", String(onlyDuplicates));
  onlyToggle.addEventListener("click", () => {
    onlyDuplicates = !onlyDuplicates;
    localStorage.setItem("asktwice.onlyDuplicates", onlyDuplicates ? "1" : "0");
    onlyToggle.setAttribute("aria-pressed", String(onlyDuplicates));
    poller.now();
  });

  async function refresh() {
    const [flags, queue, listing] = await Promise.all([
      Live.call("GET", urls.flags),
      Live.call("GET", urls.queue),
      Live.call("GET", `${urls.questions}?sort=votes`),
    ]);
    const failed = [flags, queue, listing].find((r) => !r.ok);
    if (failed) {
      say(failed.status === 0 ? "Offline: retrying…" : `Cannot load: ${failed.data.error}`, "error");
      return;
    }
    if ($("mod-status").textContent === "Offline: retrying…") say("");
    const hiddenRelated = onlyDuplicates ? " (related ones hidden)" : "";
    fill("flags", queueOrder(flags.data.flags), "flag", renderFlag, `No open flags${hiddenRelated}.`);
    fill("awaiting", queue.data.awaiting_approval, "aw", renderAwaiting, "Nothing awaits approval.");
    fill("failed", queue.data.failed, "fail", renderFailed, "No failures.");
    fill("visible", listing.data.questions, "vis", renderVisible, "No questions yet.");
    fill("hidden", queue.data.hidden, "hid", renderHidden, "Nothing hidden.");
    restoreSelection();
  }

  const poller = Live.poll(refresh, POLL_MS);
})();
