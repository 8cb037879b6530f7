// The presenter view: the question on stage ("now answering"), the open questions by votes, then
// the answered ones (ticked), as many as the screen has room for; refreshed live.
"use strict";

(() => {
  const { h } = Live;
  const page = Live.pageData();
  const POLL_MS = 1500;
  const $ = (id) => document.getElementById(id);
  // Below this width the columns stack and the page scrolls: nothing is left out.
  const fills = window.matchMedia("(min-width: 50rem)");

  function renderOpen(q) {
    return h(
      "li",
      { class: `pq${q.pinned ? " is-pinned" : ""}` },
      h("span", { class: "pq-votes", text: String(q.votes) }),
      h("p", { class: "pq-text" }, `${q.text} `, h("span", { class: "pq-name", text: q.name || "Anonymous" })),
    );
  }

  function renderAnswered(q) {
    return h(
      "li",
      { class: "pq is-answered" },
      h("span", { class: "pq-tick", "aria-hidden": "true", text: "✓" }),
      h("p", { class: "pq-text", text: q.text }),
      h("span", { class: "pq-answered", text: "Answered" }),
    );
  }

  function renderNow(q) {
    $("now").hidden = !q;
    if (!q) return;
    if ($("now-text").textContent !== q.text) $("now-text").textContent = q.text;
    $("now-meta").textContent = `${q.name || "Anonymous"} · ${q.votes} vote${q.votes === 1 ? "" : "s"}`;
  }

  // Shows the items that fit whole in the list's box, hides the rest; returns how many it hid.
  function fit(list) {
    const items = Array.from(list.children);
    for (const item of items) item.hidden = false;
    if (!fills.matches) return 0;
    const bottom = list.getBoundingClientRect().bottom + 0.5;
    const first = items.findIndex((item) => item.getBoundingClientRect().bottom > bottom);
    if (first < 0) return 0;
    for (const item of items.slice(first)) item.hidden = true;
    return items.length - first;
  }

  // The code and the address never wrap: a long one gets a smaller font instead.
  function shrinkToFit(node) {
    node.style.fontSize = "";
    let size = parseFloat(getComputedStyle(node).fontSize);
    while (node.scrollWidth > node.clientWidth && size > 10) {
      size *= 0.92;
      node.style.fontSize = `${size}px`;
    }
  }

  function layout() {
    const more = $("present-more");
    let hidden = fit($("present-list"));
    more.hidden = hidden === 0;
    if (hidden) hidden = fit($("present-list")); // the "more" line takes some of the room
    more.textContent = `+ ${hidden} more question${hidden === 1 ? "" : "s"}`;
    fit($("answered-list"));
    shrinkToFit($("join-code"));
    shrinkToFit($("join-url"));
  }

  async function refresh() {
    const res = await Live.call("GET", `${page.urls.questions}?sort=votes`);
    if (!res.ok) return; // keep showing the last good state on a projector
    const rows = res.data.questions.slice(0, page.max);
    const now = rows.find((q) => q.now_answering) || null;
    const open = rows.filter((q) => q !== now && !q.answered);
    const answered = rows.filter((q) => q.answered);
    renderNow(now);
    Live.syncList($("present-list"), open.map((q) => ({ key: q.id, data: q })), renderOpen);
    Live.syncList($("answered-list"), answered.map((q) => ({ key: q.id, data: q })), renderAnswered);
    $("answered").hidden = answered.length === 0;
    $("present-empty").hidden = open.length > 0 || now !== null;
    $("present-closed").hidden = res.data.event.open;
    layout();
  }

  window.addEventListener("resize", layout);
  fills.addEventListener("change", layout);
  if (document.fonts) document.fonts.ready.then(layout);
  layout();
  Live.poll(refresh, POLL_MS);
})();
