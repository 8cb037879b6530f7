// The attendee page: ask (with "Already asked?" suggestions while typing), upvote, follow
// one's own questions (the "Mine" tab), all kept live by polling the questions endpoint.
"use strict";

(() => {
  const { h } = Live;
  const page = Live.pageData();
  const urls = page.urls;
  const POLL_MS = 1500;
  const SUGGEST_DELAY_MS = 300;
  const SUGGEST_MIN_CHARS = 8;
  // A 403 from a vote or a post: the attendee cookie is gone or no longer valid; the page gives a new one.
  const RELOAD = "This page lost your attendee identity: reload it to ask or vote.";

  const $ = (id) => document.getElementById(id);
  const form = $("ask-form");
  const fields = $("ask-fields");
  const textarea = $("ask-text");
  const nameInput = $("ask-name");
  const counter = $("ask-counter");
  const status = $("ask-status");
  const list = $("questions");
  const mineList = $("mine");

  // The listing says which questions this attendee voted for; localStorage keeps the answer of a
  // vote until the next poll confirms it.
  const votedKey = `asktwice.voted.${page.code}`;
  const voted = new Set(readJson(votedKey, []));
  let sort = localStorage.getItem("asktwice.sort") === "time" ? "time" : "votes";
  let open = page.open && page.identity;
  let latest = null; // the last listing from the server
  let suggestions = [];
  let suggestSeq = 0;
  let suggestTimer = null;

  function readJson(key, fallback) {
    try {
      return JSON.parse(localStorage.getItem(key)) || fallback;
    } catch (err) {
      return fallback;
    }
  }

  function markVoted(id) {
    voted.add(id);
    localStorage.setItem(votedKey, JSON.stringify(Array.from(voted)));
  }

  let sayTimer = null;
  function say(message, kind) {
    clearTimeout(sayTimer);
    status.textContent = message;
    status.className = `status ${kind || ""}`;
  }

  function seconds(n) {
    return `${n} second${n === 1 ? "" : "s"}`;
  }

  // A 429 names how long the limit lasts (retry_after); once it is over the message says so.
  function sayLimited(res, what) {
    const wait = Number(res.data.retry_after) || 60;
    const again = what === "ask" ? "ask again" : "vote again";
    const lead =
      what === "ask" ? "You have asked several questions in a row" : "You have voted many times in a row";
    say(`${lead}: you can ${again} in ${seconds(wait)}.`, "error");
    sayTimer = setTimeout(() => say(`You can ${again} now.`, "ok"), wait * 1000);
  }

  // --- rendering -------------------------------------------------------------------------

  function badge(text, kind) {
    return h("span", { class: `badge badge-${kind}`, text });
  }

  // Clicks are handled by the lists (see "wiring"), so the server-rendered buttons work before
  // the first poll has rebuilt them.
  function voteButton(q, label) {
    const done = voted.has(q.id);
    return h(
      "button",
      {
        type: "button",
        class: done ? "vote voted" : "vote",
        dataset: { action: "vote" },
        disabled: done || !open,
        "aria-pressed": done ? "true" : "false",
        "aria-label": done ? `You upvoted this (${q.votes} votes)` : `Upvote (${q.votes} votes)`,
      },
      label ? `▲ ${label}` : "▲ ",
      label ? null : h("span", { class: "vote-count", text: String(q.votes) }),
    );
  }

  function renderQuestion(q) {
    const processing = q.mine && q.state !== "processed";
    return h(
      "li",
      { class: `question${q.pinned ? " is-pinned" : ""}${q.answered ? " is-answered" : ""}`, id: `q-${q.id}` },
      h("div", { class: "votes" }, voteButton(q)),
      h(
        "div",
        { class: "body" },
        h("p", { class: "text", text: q.text }),
        h(
          "p",
          { class: "meta" },
          q.name || "Anonymous",
          q.pinned ? badge("pinned", "pinned") : null,
          q.answered ? badge("answered", "answered") : null,
          q.mine ? badge("yours", "mine") : null,
          processing ? badge("being processed", "processing") : null,
        ),
      ),
    );
  }

  function mineState(q) {
    if (q.status === "merged") {
      // The question it joined, by its words: attendees never see question numbers.
      const text = q.original;
      if (!text) return h("span", { class: "state state-merged", text: "Merged into another question" });
      const link = h("a", {
        href: `#q-${q.merged_into}`,
        text: `“${text}”`,
        on: {
          click: (event) => {
            const target = document.getElementById(`q-${q.merged_into}`);
            if (target) {
              event.preventDefault();
              selectTab(tabAll);
              Live.flash(target);
            }
          },
        },
      });
      return h("span", { class: "state state-merged" }, "Merged into ", link, ": its votes count there");
    }
    if (q.status === "hidden") return h("span", { class: "state state-hidden", text: "Hidden by the moderators" });
    if (q.status === "awaiting_approval") {
      return h("span", { class: "state state-awaiting", text: "Awaiting approval" });
    }
    if (q.state !== "processed") return h("span", { class: "state state-processing", text: "Being processed" });
    const votes = `${q.votes} vote${q.votes === 1 ? "" : "s"}`;
    if (q.answered) return h("span", { class: "state state-answered", text: `✓ Answered · ${votes}` });
    return h("span", { class: "state state-live", text: `Live · ${q.votes} vote${q.votes === 1 ? "" : "s"}` });
  }

  function renderMine(q) {
    return h(
      "li",
      { class: `question mine-item${q.answered ? " is-answered" : ""}`, id: `mine-${q.id}` },
      h("div", { class: "body" }, h("p", { class: "text", text: q.text }), h("p", { class: "meta" }, mineState(q))),
    );
  }

  function renderSuggestion(q) {
    const votes = `${q.votes} vote${q.votes === 1 ? "" : "s"}`;
    return h(
      "li",
      { class: "suggestion" },
      h(
        "div",
        { class: "body" },
        h("p", { class: "text", text: q.text }),
        h("p", { class: "meta", text: `${q.kind === "duplicate" ? "Same question" : "Related"} · ${votes}` }),
      ),
      voteButton({ id: q.id, votes: q.votes }, voted.has(q.id) ? "Upvoted" : "Upvote instead"),
    );
  }

  function render() {
    if (!latest) return;
    const questions = latest.questions;
    questions.forEach((q) => {
      if (q.voted) voted.add(q.id);
    });
    Live.syncList(
      list,
      questions.map((q) => ({ key: q.id, data: { ...q, voted: voted.has(q.id), open } })),
      renderQuestion,
    );
    $("empty").hidden = questions.length > 0;
    // Your questions: the public ones you asked and those only you can see, newest first.
    const own = [...latest.mine, ...questions.filter((q) => q.mine)].sort((a, b) =>
      b.created_at.localeCompare(a.created_at),
    );
    // The text of a merged question's original is part of what its row shows.
    Live.syncList(
      mineList,
      own.map((q) => ({ key: q.id, data: { ...q, original: mergedText(q) } })),
      renderMine,
    );
    $("mine-empty").hidden = own.length > 0;
    $("mine-count").textContent = own.length ? `(${own.length})` : "";
    renderSuggestions();
  }

  function mergedText(q) {
    if (q.status !== "merged") return null;
    const original = latest.questions.find((other) => other.id === q.merged_into);
    return original ? original.text : q.merged_into_text;
  }

  function renderSuggestions() {
    const box = $("suggestions");
    box.hidden = suggestions.length === 0;
    Live.syncList(
      $("suggestion-list"),
      suggestions.map((q) => ({ key: q.id, data: { ...q, voted: voted.has(q.id), open } })),
      renderSuggestion,
    );
  }

  // Without an identity (the page gives none past its share for one network address) the page
  // only reads: asking and voting are refused by the server.
  function applyOpen(event) {
    open = event.open && page.identity;
    fields.disabled = !open;
    $("closed-note").hidden = event.open;
    const title = $("event-title");
    if (title.textContent !== event.title) title.textContent = event.title;
  }

  // --- server calls ----------------------------------------------------------------------

  async function refresh() {
    const res = await Live.call("GET", `${urls.questions}?sort=${sort}`);
    if (!res.ok) {
      say(res.status === 0 ? "Offline: retrying…" : res.data.error, "error");
      return;
    }
    if (status.textContent === "Offline: retrying…") say("");
    latest = res.data;
    applyOpen(res.data.event);
    render();
  }

  async function vote(id) {
    const res = await Live.call("POST", Live.withId(urls.vote, id));
    if (res.ok && res.data.voted) {
      markVoted(id);
      for (const q of [...(latest ? latest.questions : []), ...suggestions]) if (q.id === id) q.votes = res.data.votes;
      render();
      return true;
    }
    if (res.status === 429) sayLimited(res, "vote");
    else say(res.status === 403 ? RELOAD : `Could not vote: ${res.data.error}`, "error");
    poller.now();
    return false;
  }

  async function suggest() {
    const text = textarea.value.trim();
    const seq = ++suggestSeq;
    if (text.length < SUGGEST_MIN_CHARS || !open) {
      suggestions = [];
      renderSuggestions();
      return;
    }
    const res = await Live.call("GET", `${urls.similar}?q=${encodeURIComponent(text)}`);
    if (seq !== suggestSeq) return; // a later keystroke's answer wins
    suggestions = res.ok ? res.data.results : [];
    renderSuggestions();
  }

  // --- wiring ----------------------------------------------------------------------------

  function updateCounter() {
    const used = textarea.value.length;
    counter.textContent = `${used} / ${page.maxChars}`;
    counter.classList.toggle("near", used > page.maxChars * 0.9);
  }

  textarea.addEventListener("input", () => {
    updateCounter();
    // "Sent. Thank you!" was about the last question, not this one.
    if (status.classList.contains("ok")) say("");
    clearTimeout(suggestTimer);
    suggestTimer = setTimeout(suggest, SUGGEST_DELAY_MS);
  });

  function onVoteClick(list, afterVote) {
    list.addEventListener("click", async (event) => {
      const button = event.target.closest("button[data-action=vote]");
      const item = button && button.closest("li[data-key]");
      if (!item || button.disabled) return;
      button.disabled = true; // one click, one request
      const id = Number(item.dataset.key);
      if ((await vote(id)) && afterVote) afterVote(id);
      else if (!voted.has(id)) button.disabled = !open;
    });
  }
  onVoteClick(list);
  onVoteClick($("suggestion-list"), upvotedInstead);

  // "Upvote instead": the vote replaces the draft, so the draft goes once the vote went through.
  function upvotedInstead(id) {
    textarea.value = "";
    updateCounter();
    suggestSeq++;
    suggestions = [];
    renderSuggestions();
    say("Your vote went to the question already asked.", "ok");
    Live.flash(document.getElementById(`q-${id}`));
  }

  nameInput.value = localStorage.getItem("asktwice.name") || "";

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = textarea.value.trim();
    const name = nameInput.value.trim();
    if (!text) {
      say("Type a question first.", "error");
      textarea.focus();
      return;
    }
    if (!page.anonymous && !name) {
      say("This event asks for your name.", "error");
      nameInput.focus();
      return;
    }
    const submit = $("ask-submit");
    submit.disabled = true;
    const res = await Live.call("POST", urls.questions, { text, name });
    submit.disabled = false;
    if (res.status === 429) {
      sayLimited(res, "ask");
      return;
    }
    if (!res.ok) {
      say(res.status === 403 ? RELOAD : res.data.error, "error");
      (res.data.field === "name" ? nameInput : textarea).focus();
      return;
    }
    localStorage.setItem("asktwice.name", name);
    textarea.value = "";
    updateCounter();
    suggestSeq++;
    suggestions = [];
    renderSuggestions();
    say(
      res.data.status === "awaiting_approval"
        ? "Sent: it appears once a moderator approves it."
        : "Sent. Thank you!",
      "ok",
    );
    poller.now();
  });

  for (const button of document.querySelectorAll(".sort .toggle")) {
    button.setAttribute("aria-pressed", String(button.dataset.sort === sort));
    button.addEventListener("click", () => {
      sort = button.dataset.sort;
      localStorage.setItem("asktwice.sort", sort);
      for (const other of document.querySelectorAll(".sort .toggle")) {
        other.setAttribute("aria-pressed", String(other === button));
      }
      poller.now();
    });
  }

  // All / Mine: a tablist (arrow keys, Home and End move between the tabs, as in the ARIA pattern).
  const tabAll = $("tab-all");
  const tabMine = $("tab-mine");
  const tabs = [tabAll, tabMine];

  function selectTab(tab, focus) {
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      $(other.getAttribute("aria-controls")).hidden = !selected;
    }
    $("sort").hidden = tab !== tabAll; // "Mine" is newest first
    if (focus) tab.focus();
  }

  for (const tab of tabs) {
    tab.addEventListener("click", () => selectTab(tab));
    tab.addEventListener("keydown", (event) => {
      const at = tabs.indexOf(tab);
      const next = {
        ArrowRight: tabs[(at + 1) % tabs.length],
        ArrowLeft: tabs[(at - 1 + tabs.length) % tabs.length],
        Home: tabs[0],
        End: tabs[tabs.length - 1],
      }[event.key];
      if (!next) return;
      event.preventDefault();
      selectTab(next, true);
    });
  }

  updateCounter();
  const poller = Live.poll(refresh, POLL_MS);
})();
