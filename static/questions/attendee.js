// The attendee page: ask (with "Already asked?" suggestions while typing), upvote, see what is
// on stage and what was answered (the "Answered" tab), follow, edit or withdraw one's own questions
// (the "Mine" tab), all kept live by polling the questions endpoint.
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
  const answeredList = $("answered-list");
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
  // One's own question being edited or withdrawn: {id, list, mode: "edit" | "withdraw", draft}.
  // A poll does not disturb it (its row's data stays the same while it lasts).
  let changing = null;

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
  // The name starts with what the button shows (WCAG 2.5.3, label in name): "3 votes, upvote",
  // "Upvote instead, 3 votes"; the arrow is decoration.
  function voteButton(q, label) {
    const done = voted.has(q.id);
    const votes = `${q.votes} vote${q.votes === 1 ? "" : "s"}`;
    return h(
      "button",
      {
        type: "button",
        class: done ? "vote voted" : "vote",
        dataset: { action: "vote" },
        disabled: done || !open,
        "aria-pressed": done ? "true" : "false",
      },
      h("span", { "aria-hidden": "true", text: "▲ " }),
      label || h("span", { class: "vote-count", text: String(q.votes) }),
      h("span", {
        class: "visually-hidden",
        text: label ? `, ${votes}` : ` vote${q.votes === 1 ? "" : "s"}, ${done ? "you upvoted this" : "upvote"}`,
      }),
    );
  }

  function answerBlock(q) {
    if (!q.answer) return null;
    return h(
      "div",
      { class: "answer" },
      h("p", { class: "answer-label", text: "Answer" }),
      h("p", { class: "answer-text", text: q.answer }),
    );
  }

  // Until when the asker may still change it; null once they may not.
  function editable(q) {
    return q.mine && q.editable_until && Date.parse(q.editable_until) > Date.now() && open;
  }

  function ownActions(q) {
    if (!q.editable) return null;
    return h(
      "div",
      { class: "own-actions" },
      h("button", { type: "button", class: "link-button", dataset: { action: "edit" }, text: "Edit" }),
      h("button", { type: "button", class: "link-button danger", dataset: { action: "withdraw" }, text: "Withdraw" }),
    );
  }

  // The row of a question being changed: the edit form, or the question to confirm a withdrawal.
  function renderChanging(q) {
    if (changing.mode === "withdraw") {
      return h(
        "div",
        { class: "body" },
        h("p", { class: "text", text: q.text }),
        h(
          "div",
          { class: "confirm", role: "group", "aria-label": "Withdraw your question" },
          h("p", { text: "Withdraw this question? It leaves the list for everyone." }),
          h("button", { type: "button", class: "danger", dataset: { action: "withdraw-yes", control: "withdraw-yes" }, text: "Withdraw" }),
          h("button", { type: "button", class: "secondary", dataset: { action: "cancel", control: "cancel" }, text: "Keep it" }),
        ),
      );
    }
    const field = Live.draftField(
      {
        class: "edit-text",
        rows: "3",
        maxlength: String(page.maxChars),
        "aria-label": "Edit your question",
        dataset: { control: "edit-text" },
      },
      changing,
    );
    return h(
      "form",
      { class: "body edit-form", dataset: { form: "edit" } },
      field,
      h(
        "p",
        { class: "edit-note muted", text: "Your edit is checked again for questions already asked; votes stay." },
      ),
      h(
        "div",
        { class: "edit-buttons" },
        h("button", { type: "submit", dataset: { control: "save" }, text: "Save" }),
        h("button", { type: "button", class: "secondary", dataset: { action: "cancel", control: "cancel" }, text: "Cancel" }),
      ),
    );
  }

  function renderQuestion(q) {
    const processing = q.mine && q.state !== "processed";
    const classes = ["question"];
    if (q.now_answering) classes.push("is-now");
    if (q.pinned) classes.push("is-pinned");
    if (q.answered) classes.push("is-answered");
    const li = h("li", { class: classes.join(" "), id: `q-${q.id}` }, h("div", { class: "votes" }, voteButton(q)));
    if (q.changing) {
      li.append(renderChanging(q));
      return li;
    }
    li.append(
      h(
        "div",
        { class: "body" },
        h("p", { class: "text", text: q.text }),
        h(
          "p",
          { class: "meta" },
          q.name || "Anonymous",
          q.now_answering ? badge("now answering", "now") : null,
          q.pinned ? badge("pinned", "pinned") : null,
          q.answered ? badge("answered", "answered") : null,
          q.mine ? badge("yours", "mine") : null,
          processing ? badge("being processed", "processing") : null,
          q.edited ? h("span", { class: "edited", text: "edited" }) : null,
        ),
        answerBlock(q),
        ownActions(q),
      ),
    );
    return li;
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
              selectTab(target.closest("[role=tabpanel]") === $("panel-answered") ? tabAnswered : tabAll);
              Live.flash(target);
            }
          },
        },
      });
      return h("span", { class: "state state-merged" }, "Merged into ", link, ": its votes count there");
    }
    if (q.status === "withdrawn") return h("span", { class: "state state-hidden", text: "Withdrawn by you" });
    if (q.status === "hidden") return h("span", { class: "state state-hidden", text: "Hidden by the moderators" });
    if (q.status === "awaiting_approval") {
      return h("span", { class: "state state-awaiting", text: "Awaiting approval" });
    }
    if (q.state !== "processed") return h("span", { class: "state state-processing", text: "Being processed" });
    const votes = `${q.votes} vote${q.votes === 1 ? "" : "s"}`;
    if (q.answered) return h("span", { class: "state state-answered", text: `✓ Answered · ${votes}` });
    if (q.now_answering) return h("span", { class: "state state-live", text: `On stage now · ${votes}` });
    return h("span", { class: "state state-live", text: `Live · ${votes}` });
  }

  function renderMine(q) {
    const li = h("li", { class: `question mine-item${q.answered ? " is-answered" : ""}`, id: `mine-${q.id}` });
    if (q.changing) {
      li.append(renderChanging(q));
      return li;
    }
    li.append(
      h(
        "div",
        { class: "body" },
        h("p", { class: "text", text: q.text }),
        h("p", { class: "meta" }, mineState(q), q.edited ? h("span", { class: "edited", text: "edited" }) : null),
        answerBlock(q),
        ownActions(q),
      ),
    );
    return li;
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

  // What a row shows; a row being changed keeps the same data (and so its form) until it is done.
  function rowData(q, where) {
    if (changing && changing.id === q.id && changing.list === where) {
      // The votes as they were when the change began: a vote meanwhile must not rebuild the form.
      return { id: q.id, text: q.text, votes: changing.votes, voted: voted.has(q.id), open, changing: changing.mode };
    }
    return { ...q, voted: voted.has(q.id), open, editable: Boolean(editable(q)) };
  }

  function render() {
    if (!latest) return;
    const questions = latest.questions;
    questions.forEach((q) => {
      if (q.voted) voted.add(q.id);
    });
    const waiting = questions.filter((q) => !q.answered);
    // The latest answer first.
    const answered = questions
      .filter((q) => q.answered)
      .sort((a, b) => (b.answered_at || "").localeCompare(a.answered_at || ""));
    Live.syncList(list, waiting.map((q) => ({ key: q.id, data: rowData(q, "all") })), renderQuestion);
    Live.syncList(answeredList, answered.map((q) => ({ key: q.id, data: rowData(q, "answered") })), renderQuestion);
    $("empty").hidden = waiting.length > 0;
    $("answered-empty").hidden = answered.length > 0;
    $("answered-count").textContent = answered.length ? `(${answered.length})` : "";
    // Your questions: the public ones you asked and those only you can see, newest first.
    const own = [...latest.mine, ...questions.filter((q) => q.mine)].sort((a, b) =>
      b.created_at.localeCompare(a.created_at),
    );
    // The text of a merged question's original is part of what its row shows.
    Live.syncList(
      mineList,
      own.map((q) => ({ key: q.id, data: { ...rowData(q, "mine"), original: mergedText(q) } })),
      renderMine,
    );
    $("mine-empty").hidden = own.length > 0;
    $("mine-count").textContent = own.length ? `(${own.length})` : "";
    renderNow(questions.find((q) => q.id === latest.event.now_answering) || null);
    renderSuggestions();
  }

  function renderNow(q) {
    $("now").hidden = !q;
    if (!q) return;
    if ($("now-text").textContent !== q.text) $("now-text").textContent = q.text;
    $("now-meta").textContent = `${q.name || "Anonymous"} · ${q.votes} vote${q.votes === 1 ? "" : "s"}`;
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
  onVoteClick(answeredList);
  onVoteClick($("suggestion-list"), upvotedInstead);

  // --- one's own question: edit or withdraw ----------------------------------------------

  function findQuestion(id) {
    if (!latest) return null;
    return [...latest.questions, ...latest.mine].find((q) => q.id === id) || null;
  }

  // Re-render, then put the keyboard focus on `selector` inside the row (the row was rebuilt).
  function renderFocusing(id, where, selector) {
    render();
    const row = document.getElementById(`${where === "mine" ? "mine" : "q"}-${id}`);
    const target = row && row.querySelector(selector);
    if (target) target.focus();
  }

  async function saveEdit(form) {
    const { id, list: where } = changing;
    const text = changing.draft.trim();
    if (!text) {
      say("Type your question, or withdraw it.", "error");
      form.querySelector("textarea").focus();
      return;
    }
    const save = form.querySelector("button[type=submit]");
    save.disabled = true;
    const res = await Live.call("PATCH", Live.withId(urls.question, id), { text });
    save.disabled = false;
    if (res.status === 429) {
      sayLimited(res, "ask");
      return;
    }
    if (!res.ok) {
      say(res.status === 403 ? RELOAD : `Could not save: ${res.data.error}`, "error");
      if (res.status !== 400) {
        changing = null;
        poller.now();
      }
      return;
    }
    changing = null;
    replaceQuestion(res.data);
    say(res.data.status === "awaiting_approval" ? "Saved: it shows again once a moderator approves it." : "Saved.", "ok");
    renderFocusing(id, where, "button[data-action=edit]");
    poller.now();
  }

  async function withdraw(id) {
    const res = await Live.call("DELETE", Live.withId(urls.question, id));
    changing = null;
    if (res.ok) {
      replaceQuestion(res.data);
      say("Your question was withdrawn.", "ok");
    } else {
      say(res.status === 403 ? RELOAD : `Could not withdraw: ${res.data.error}`, "error");
    }
    render();
    poller.now();
  }

  // The server's answer to a change stands until the next poll brings the whole list.
  function replaceQuestion(fresh) {
    if (!latest) return;
    const visible = fresh.status === "visible";
    latest.questions = visible
      ? latest.questions.map((q) => (q.id === fresh.id ? { ...q, ...fresh } : q))
      : latest.questions.filter((q) => q.id !== fresh.id);
    latest.mine = latest.mine.filter((q) => q.id !== fresh.id);
    if (!visible) latest.mine.push(fresh);
  }

  function onOwnChange(container, where) {
    container.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      const item = button && button.closest("li[data-key]");
      if (!item) return;
      const id = Number(item.dataset.key);
      const action = button.dataset.action;
      if (action === "edit" || action === "withdraw") {
        const q = findQuestion(id);
        if (!q) return;
        changing = { id, list: where, mode: action, draft: q.text, votes: q.votes };
        renderFocusing(id, where, action === "edit" ? "textarea" : "button[data-action=cancel]");
      } else if (action === "cancel") {
        const mode = changing ? changing.mode : "edit";
        changing = null;
        renderFocusing(id, where, `button[data-action=${mode}]`);
      } else if (action === "withdraw-yes") {
        button.disabled = true;
        withdraw(id);
      }
    });
    container.addEventListener("submit", (event) => {
      const form = event.target.closest("form[data-form=edit]");
      if (!form || !changing) return;
      event.preventDefault();
      saveEdit(form);
    });
    container.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && changing && event.target.closest("li[data-key]")) {
        const { id, mode } = changing;
        changing = null;
        renderFocusing(id, where, `button[data-action=${mode}]`);
      }
    });
  }
  onOwnChange(list, "all");
  onOwnChange(answeredList, "answered");
  onOwnChange(mineList, "mine");

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

  // Open / Answered / Mine: a tablist (arrow keys, Home and End move between the tabs, as in the
  // ARIA pattern).
  const tabAll = $("tab-all");
  const tabAnswered = $("tab-answered");
  const tabMine = $("tab-mine");
  const tabs = [tabAll, tabAnswered, tabMine];

  function selectTab(tab, focus) {
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      $(other.getAttribute("aria-controls")).hidden = !selected;
    }
    $("sort").hidden = tab !== tabAll; // "Answered" is latest answer first, "Mine" newest first
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
