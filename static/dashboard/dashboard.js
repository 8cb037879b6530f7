// The dashboard: figures and three inline SVG charts from /api/events/<code>/dashboard,
// redrawn every few seconds. No chart library: each chart is a few dozen SVG elements.
"use strict";

(() => {
  const { h } = Live;
  const page = Live.pageData();
  const NS = "http://www.w3.org/2000/svg";
  const LABELS = ["negative", "neutral", "positive"];
  const CLASS = { negative: "neg", neutral: "neu", positive: "pos", unscored: "unscored" };
  const $ = (id) => document.getElementById(id);

  // s("rect", {x: 1}, child...): an SVG element; text children become text nodes.
  function s(tag, attrs, ...children) {
    const node = document.createElementNS(NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(key, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function chart(width, height, label) {
    return s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label });
  }

  function hhmm(iso) {
    return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function emptyNote(svg, width, height, text) {
    svg.append(s("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "empty-note" }, text));
  }

  // Bar chart: one bar per sentiment label.
  function drawSentiment(counts) {
    const W = 420;
    const H = 220;
    const top = 22;
    const bottom = 28;
    const labels = counts.unscored ? [...LABELS, "unscored"] : LABELS;
    const max = Math.max(1, ...labels.map((l) => counts[l]));
    const total = labels.reduce((sum, l) => sum + counts[l], 0);
    const svg = chart(W, H, `Sentiment: ${labels.map((l) => `${counts[l]} ${l}`).join(", ")}`);
    svg.append(s("line", { x1: 0, x2: W, y1: H - bottom, y2: H - bottom, class: "axis" }));
    const slot = W / labels.length;
    labels.forEach((label, i) => {
      const value = counts[label];
      const height = ((H - top - bottom) * value) / max;
      const x = i * slot + slot * 0.2;
      const y = H - bottom - height;
      svg.append(
        s(
          "rect",
          { x, y, width: slot * 0.6, height, rx: 3, class: `bar ${CLASS[label]}`, "data-label": label, "data-value": value },
          s("title", {}, `${label}: ${value}`),
        ),
        s("text", { x: x + slot * 0.3, y: y - 6, "text-anchor": "middle", class: "value" }, String(value)),
        s("text", { x: x + slot * 0.3, y: H - 10, "text-anchor": "middle", class: "tick" }, label),
      );
    });
    if (!total) emptyNote(svg, W, H / 2, "No questions yet");
    $("chart-sentiment").replaceChildren(svg);
  }

  // Stacked step areas of the sentiment shares per bucket (negative at the bottom, where the eye
  // starts); a bucket with no scored question leaves a gap rather than a made-up value.
  function drawCourse(timeline, bucketSeconds) {
    const W = 600;
    const H = 230;
    const left = 38;
    const right = 8;
    const top = 10;
    const bottom = 26;
    const svg = chart(W, H, "Share of negative, neutral and positive questions over time");
    const plotW = W - left - right;
    const plotH = H - top - bottom;
    for (const share of [0, 0.5, 1]) {
      const y = top + plotH * (1 - share);
      svg.append(
        s("line", { x1: left, x2: W - right, y1: y, y2: y, class: share === 0 ? "axis" : "grid-line" }),
        s("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "tick" }, `${share * 100}%`),
      );
    }
    if (!timeline.some((b) => b.shares)) {
      emptyNote(svg, W, H, "No scored questions yet");
      $("chart-course").replaceChildren(svg);
      return;
    }
    const step = plotW / timeline.length;
    const x = (i) => left + i * step;
    const y = (share) => top + plotH * (1 - share);
    // Runs of consecutive buckets that have shares.
    const runs = [];
    timeline.forEach((bucket, i) => {
      if (!bucket.shares) return;
      const last = runs[runs.length - 1];
      if (last && last[last.length - 1] === i - 1) last.push(i);
      else runs.push([i]);
    });
    for (const run of runs) {
      let below = run.map(() => 0);
      for (const label of LABELS) {
        const above = run.map((i, k) => below[k] + timeline[i].shares[label]);
        let d = "";
        run.forEach((i, k) => {
          d += `${k === 0 ? "M" : "L"}${x(i).toFixed(1)},${y(above[k]).toFixed(1)} H${x(i + 1).toFixed(1)} `;
        });
        for (let k = run.length - 1; k >= 0; k--) {
          d += `L${x(run[k] + 1).toFixed(1)},${y(below[k]).toFixed(1)} H${x(run[k]).toFixed(1)} `;
        }
        svg.append(
          s(
            "path",
            {
              d: `${d}Z`,
              class: `layer ${CLASS[label]}`,
              "data-label": label,
              "data-values": JSON.stringify(run.map((i) => timeline[i].shares[label])),
            },
            s("title", {}, `${label}: ${run.map((i) => Live.percent(timeline[i].shares[label])).join(", ")}`),
          ),
        );
        below = above;
      }
    }
    timeAxis(svg, timeline, x, H - 8);
    $("bucket-note").textContent = `(${Math.round(bucketSeconds / 60)}-minute buckets)`;
    $("chart-course").replaceChildren(svg);
  }

  function timeAxis(svg, timeline, x, y) {
    const picks = new Set([0, Math.floor((timeline.length - 1) / 2), timeline.length - 1]);
    for (const i of picks) {
      svg.append(s("text", { x: x(i), y, "text-anchor": "start", class: "tick" }, hhmm(timeline[i].start)));
    }
  }

  // Bars: questions per minute in each bucket.
  function drawRate(timeline) {
    const W = 600;
    const H = 200;
    const left = 38;
    const right = 8;
    const top = 12;
    const bottom = 26;
    const svg = chart(W, H, "Questions per minute over time");
    const plotW = W - left - right;
    const plotH = H - top - bottom;
    svg.append(s("line", { x1: left, x2: W - right, y1: top + plotH, y2: top + plotH, class: "axis" }));
    if (!timeline.length) {
      emptyNote(svg, W, H, "No questions yet");
      $("chart-rate").replaceChildren(svg);
      return;
    }
    const max = Math.max(...timeline.map((b) => b.per_minute), 0.001);
    svg.append(
      s("line", { x1: left, x2: W - right, y1: top, y2: top, class: "grid-line" }),
      s("text", { x: left - 6, y: top + 4, "text-anchor": "end", class: "tick" }, formatRate(max)),
      s("text", { x: left - 6, y: top + plotH + 4, "text-anchor": "end", class: "tick" }, "0"),
    );
    const step = plotW / timeline.length;
    const x = (i) => left + i * step;
    timeline.forEach((bucket, i) => {
      const height = (plotH * bucket.per_minute) / max;
      svg.append(
        s(
          "rect",
          {
            x: x(i) + step * 0.12,
            y: top + plotH - height,
            width: Math.max(step * 0.76, 1),
            height,
            class: "bar rate",
            "data-value": bucket.per_minute,
            "data-count": bucket.count,
          },
          s("title", {}, `${hhmm(bucket.start)}: ${bucket.count} question${bucket.count === 1 ? "" : "s"} (${formatRate(bucket.per_minute)}/min)`),
        ),
      );
    });
    timeAxis(svg, timeline, x, H - 8);
    $("chart-rate").replaceChildren(svg);
  }

  function formatRate(value) {
    return value >= 10 ? String(Math.round(value)) : String(Math.round(value * 10) / 10);
  }

  function drawNegative(rows) {
    $("negative-empty").hidden = rows.length > 0;
    Live.syncList(
      $("most-negative"),
      rows.map((r) => ({ key: r.id, data: r })),
      (r) =>
        h(
          "li",
          {},
          h("span", { class: "score", text: Live.percent(r.negative) }),
          h("span", { text: r.text }),
          h("span", { class: "meta", text: ` · #${r.id} · ${r.votes} vote${r.votes === 1 ? "" : "s"} · ${r.status}` }),
        ),
    );
  }

  function drawFigures(data) {
    const d = data.duplicates;
    $("fig-total").textContent = String(data.total);
    $("fig-raised").textContent = String(d.raised);
    $("fig-merged").textContent = String(d.merged);
    $("fig-dismissed").textContent = String(d.dismissed);
    $("fig-open").textContent = String(d.open);
    $("fig-precision").textContent = d.precision === null ? "–" : Live.percent(d.precision);
  }

  async function refresh() {
    const res = await Live.call("GET", page.urls.dashboard);
    if (!res.ok) {
      $("updated").textContent = res.status === 0 ? "offline: retrying…" : `cannot load: ${res.data.error}`;
      return;
    }
    const data = res.data;
    drawFigures(data);
    drawSentiment(data.sentiment);
    drawCourse(data.timeline, data.bucket_seconds);
    drawRate(data.timeline);
    drawNegative(data.most_negative);
    $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  }

  Live.poll(refresh, page.refreshMs);
})();
