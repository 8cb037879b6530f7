// Helpers shared by the event pages: JSON calls with the CSRF header, safe DOM building,
// polling that pauses in hidden tabs, and keyed list updates that keep focus.
// User text only ever enters the page through textContent or text nodes, never innerHTML.
"use strict";

const Live = (() => {
  function pageData() {
    return JSON.parse(document.getElementById("page-data").textContent);
  }

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) return meta.content;
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  // One JSON call; never throws on HTTP errors: callers read {ok, status, data}.
  async function call(method, url, body) {
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") {
      init.headers["Content-Type"] = "application/json";
      init.headers["X-CSRFToken"] = csrfToken();
      init.body = JSON.stringify(body || {});
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (err) {
      return { ok: false, status: 0, data: { error: "network error: check your connection" } };
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = { error: `unexpected answer (${response.status})` };
    }
    return { ok: response.ok, status: response.status, data };
  }

  // An API address with the id in place of the 0 the server reversed it with.
  function withId(template, id) {
    return template.replace(/\/0(\/|$)/, `/${id}$1`);
  }

  // h("p", {class: "x", dataset: {id: 3}, on: {click: fn}}, "text", node, null)
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "on") for (const [name, fn] of Object.entries(value)) node.addEventListener(name, fn);
      else if (value === true) node.setAttribute(key, "");
      else node.setAttribute(key, String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
    }
    return node;
  }

  // A textarea that keeps its text in holder.draft as it is typed: a row rebuilt by a poll while
  // someone writes in it (an edit, an answer) gets the text back from there.
  function draftField(attrs, holder) {
    const field = h("textarea", attrs);
    field.value = holder.draft;
    field.addEventListener("input", () => {
      holder.draft = field.value;
    });
    return field;
  }

  // Calls fn now and then every `ms` after it settles (no overlapping requests); stops while the
  // tab is hidden and catches up as soon as it is shown again.
  function poll(fn, ms) {
    let timer = null;
    let running = false;
    let again = false; // asked for while a call was under way: run once more right after it
    async function tick() {
      clearTimeout(timer);
      timer = null;
      if (document.hidden) return;
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        await fn();
      } finally {
        running = false;
        if (again) {
          again = false;
          tick();
        } else if (!document.hidden) {
          timer = setTimeout(tick, ms);
        }
      }
    }
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) {
        clearTimeout(timer);
        timer = null;
      } else {
        tick();
      }
    });
    tick();
    return { now: tick };
  }

  // Makes container's children match items ({key, data}) in order. A node is rebuilt only when
  // its data changed; one that kept its data stays as it is, so a poll does not disturb it.
  function syncList(container, items, render) {
    const existing = new Map();
    for (const node of Array.from(container.children)) {
      if (node.dataset.key) existing.set(node.dataset.key, node);
      else node.remove();
    }
    items.forEach((item, index) => {
      const key = String(item.key);
      const sig = JSON.stringify(item.data);
      let node = existing.get(key);
      existing.delete(key);
      if (!node || node.dataset.sig !== sig) {
        const fresh = render(item.data);
        fresh.dataset.key = key;
        fresh.dataset.sig = sig;
        if (node) {
          replaceKeepingFocus(node, fresh);
        } else {
          container.insertBefore(fresh, container.children[index] || null);
        }
        node = fresh;
      }
      if (container.children[index] !== node) moveKeepingFocus(container, node, container.children[index] || null);
    });
    for (const node of existing.values()) node.remove();
  }

  // Rebuilding a node would drop the keyboard focus of a button inside it: move it to the twin.
  function replaceKeepingFocus(old, fresh) {
    // A toggle's action flips (pin -> unpin), so a control may name itself with data-control.
    const active = document.activeElement;
    let twinSelector = null;
    if (active && old.contains(active) && active !== old) {
      if (active.dataset.control) twinSelector = `[data-control="${active.dataset.control}"]`;
      else if (active.dataset.action) twinSelector = `[data-action="${active.dataset.action}"]`;
    }
    const hadFocus = active && old.contains(active);
    old.replaceWith(fresh);
    if (!hadFocus) return;
    const twin = twinSelector ? fresh.querySelector(twinSelector) : null;
    (twin && !twin.disabled ? twin : fresh).focus({ preventScroll: true });
  }

  // Moving a node takes it out of the document for a moment, which drops the focus inside it.
  function moveKeepingFocus(container, node, before) {
    const active = document.activeElement;
    const hadFocus = active && node.contains(active);
    container.insertBefore(node, before);
    if (hadFocus && document.activeElement !== active) active.focus({ preventScroll: true });
  }

  function flash(node) {
    if (!node) return;
    node.scrollIntoView({ behavior: "smooth", block: "center" });
    node.classList.remove("flash");
    void node.offsetWidth; // restart the animation
    node.classList.add("flash");
  }

  function percent(x) {
    return `${Math.round(x * 100)}%`;
  }

  return { pageData, call, withId, h, draftField, poll, syncList, flash, percent };
})();
