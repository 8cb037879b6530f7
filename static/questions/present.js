// The presenter view: the top questions (pinned first, then votes), refreshed live.
"use strict";

(() => {
  const { h } = Live;
  const page = Live.pageData();
  const POLL_MS = 1500;

  function renderQuestion(q) {
    return h(
      "li",
      { class: `pq${q.pinned ? " is-pinned" : ""}${q.answered ? " is-answered" : ""}` },
      h("span", { class: "pq-votes", text: String(q.votes) }),
      h(
        "div",
        { class: "pq-body" },
        h("p", { class: "pq-text", text: q.text }),
        h(
          "p",
          { class: "pq-meta" },
          q.name || "Anonymous",
          q.pinned ? h("span", { class: "pq-badge", text: "pinned" }) : null,
          q.answered ? h("span", { class: "pq-badge pq-answered", text: "answered" }) : null,
        ),
      ),
    );
  }

  async function refresh() {
    const res = await Live.call("GET", `${page.urls.questions}?sort=votes`);
    if (!res.ok) return; // keep showing the last good state on a projector
    const top = res.data.questions.slice(0, page.top);
    Live.syncList(document.getElementById("present-list"), top.map((q) => ({ key: q.id, data: q })), renderQuestion);
    document.getElementById("present-empty").hidden = top.length > 0;
    document.getElementById("present-closed").hidden = res.data.event.open;
  }

  Live.poll(refresh, POLL_MS);
})();
