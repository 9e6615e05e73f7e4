// The status page's behaviour: polls the node's read endpoints, follows one envelope
// over Server-Sent Events, and sends the operator's token with the requests that
// change something. Every text from the node is put into the page as text, never as
// markup.
(function () {
  "use strict";

  const REFRESH_MS = 2000;
  const RETRY_MAX_MS = 8000;
  const REQUEST_TIMEOUT_MS = 6000;
  const FAILURES_SHOWN = 20;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const TOKEN_KEY = "wasya-token";

  const $ = (selector) => document.querySelector(selector);

  /** An element with attributes (`class`, `dataset` keys as `data-*`) and children. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    return node;
  }

  // ---- Talking to the node -------------------------------------------------------

  /** Thrown when the node could not be reached at all (not for an error answer). */
  class Unreachable extends Error {}

  function token() {
    return $("#token").value.trim();
  }

  function authHeaders() {
    const value = token();
    return value ? { Authorization: "Bearer " + value } : {};
  }

  /** A request; its status, parsed JSON body (or null) and text. */
  async function request(path, options) {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
    let response;
    try {
      response = await fetch(path, Object.assign({ signal: abort.signal, cache: "no-store" }, options));
    } catch (error) {
      throw new Unreachable(error && error.name === "AbortError" ? "no answer in time" : "no connection");
    } finally {
      clearTimeout(timer);
    }
    const text = await response.text().catch(() => "");
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch (_) {
      body = null;
    }
    return { status: response.status, ok: response.ok, body, text };
  }

  /** The error an answer carries, as the API words it. */
  function apiError(answer) {
    const body = answer.body;
    if (body && typeof body.message === "string") {
      return { code: body.error || String(answer.status), message: body.message };
    }
    return { code: String(answer.status), message: (answer.text || "").trim() || "HTTP " + answer.status };
  }

  function showApiError(target, answer) {
    const error = apiError(answer);
    target.textContent = "";
    target.append(el("span", { text: error.message }), " ", el("code", { class: "muted", text: "(" + error.code + ")" }));
    if (answer.status === 401) {
      $("#token-form").classList.add("needed");
      $("#token").focus();
    }
  }

  // ---- Reachability --------------------------------------------------------------

  let reachable = null;

  function setReachable(yes, why) {
    $("#unreachable").hidden = yes;
    document.body.classList.toggle("stale", !yes);
    $("#unreachable-detail").textContent = yes ? "" : why || "";
    if (!yes) setPill($("#readiness"), "bad", "unreachable");
    if (yes && reachable === false) resumeFollowing();
    reachable = yes;
  }

  function setPill(pill, state, text) {
    pill.dataset.state = state;
    pill.textContent = text;
  }

  // ---- Formatting ----------------------------------------------------------------

  function duration(ms) {
    if (ms === undefined || ms === null) return "–";
    if (ms < 1) return ms.toFixed(2) + " ms";
    if (ms < 1000) return (ms < 10 ? ms.toFixed(1) : Math.round(ms)) + " ms";
    const s = ms / 1000;
    if (s < 120) return (s < 10 ? s.toFixed(1) : Math.round(s)) + " s";
    return Math.round(s / 60) + " min";
  }

  function bytes(n) {
    if (n === undefined || n === null) return "";
    const units = ["B", "KiB", "MiB", "GiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i += 1;
    }
    return (n < 10 && i > 0 ? n.toFixed(1) : Math.round(n)) + " " + units[i];
  }

  function count(n) {
    return Number(n || 0).toLocaleString("en-US");
  }

  function clock(date) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function shortId(id) {
    return id && id.length > 13 ? id.slice(0, 8) + "…" : id || "";
  }

  // ---- Actors --------------------------------------------------------------------

  let activity = { interval_ms: 5000, actors: {} };
  const freshUntil = new Map();

  function actorRow(name) {
    const tbody = $("#actors tbody");
    let row = tbody.querySelector('tr[data-actor="' + CSS.escape(name) + '"]');
    if (row) return row;
    const cell = (key, label, cls) => el("td", { class: cls, "data-cell": key, "data-label": label });
    const remove = el("button", {
      type: "button",
      class: "danger",
      "aria-label": "Remove " + name,
      text: "Remove",
      onclick: () => removeActor(name, remove),
    });
    row = el(
      "tr",
      { "data-actor": name },
      cell("name", "Actor", "name-cell"),
      cell("version", "Version"),
      cell("limits", "Limits"),
      cell("saturation", "In flight", "saturation"),
      cell("queue", "Queue", "num"),
      cell("processed", "Processed", "num"),
      cell("failed", "Failed", "num failed-count"),
      cell("spark", "Last 10 minutes"),
      el("td", { "data-cell": "actions", "data-label": "" }, remove),
    );
    tbody.append(row);
    return row;
  }

  function fill(cell, ...children) {
    cell.textContent = "";
    cell.append(...children.flat().filter((child) => child !== null && child !== undefined));
  }

  function renderActors(actors) {
    actors.sort((a, b) => a.name.localeCompare(b.name));
    const names = new Set(actors.map((actor) => actor.name));
    for (const row of Array.from($("#actors tbody").children)) {
      if (!names.has(row.dataset.actor)) row.remove();
    }
    const tbody = $("#actors tbody");
    let previous = null;
    for (const actor of actors) {
      const row = actorRow(actor.name);
      // Keeps the rows in name order, moving only what is out of place (a moved row
      // would lose the keyboard focus).
      const expected = previous ? previous.nextElementSibling : tbody.firstElementChild;
      if (expected !== row) tbody.insertBefore(row, expected);
      previous = row;
      const cells = {};
      for (const cell of row.children) cells[cell.dataset.cell] = cell;

      const reach =
        actor.not_ready
          ? el("span", { class: "reach bad", text: actor.not_ready })
          : actor.kind === "socket"
            ? el("span", { class: "reach ok", text: "runtime reachable" })
            : null;
      fill(
        cells.name,
        el("span", { class: "actor-name", text: actor.name }),
        el("span", { class: "kind " + actor.kind, text: actor.kind }),
        reach,
      );

      if (actor.kind === "socket") {
        fill(cells.version, el("span", { class: "version", text: "socket" }), el("span", { class: "digest mono", text: actor.socket || "" }));
      } else {
        const digest = actor.digest || "";
        fill(
          cells.version,
          el("span", { class: "version", text: actor.version ? "v" + actor.version : "bundled" }),
          el("span", { class: "digest mono", title: digest, text: digest ? digest.slice(0, 12) : "" }),
        );
      }

      const limits = ["timeout " + duration(actor.timeout_ms)];
      if (actor.memory_limit_bytes) limits.push("memory " + bytes(actor.memory_limit_bytes));
      if (actor.connections) limits.push(actor.connections + " connections");
      limits.push(actor.handler_mode + " mode");
      if (actor.world === "wasya:actor@0.2.0") {
        limits.push("async: " + count(actor.instances || 0) + " instances × " + actor.instance_concurrency + " calls");
      }
      fill(cells.limits, el("span", { class: "limits", title: limits.join(" · "), text: limits.join(" · ") }));

      const inFlight = actor.in_flight || 0;
      const ratio = actor.concurrency ? Math.min(1, inFlight / actor.concurrency) : 0;
      const bar = el("div", { class: "bar" + (ratio >= 1 ? " full" : ratio >= 0.75 ? " warn" : "") }, el("span"));
      bar.firstChild.style.width = Math.round(ratio * 100) + "%";
      fill(cells.saturation, el("span", { class: "mono", text: inFlight + " / " + actor.concurrency }), bar);
      cells.saturation.title = Math.round(ratio * 100) + "% of the concurrency limit in use";

      cells.queue.textContent = actor.queue_depth === undefined ? "–" : count(actor.queue_depth);
      cells.queue.title = actor.queue_depth === undefined ? "the transport does not tell" : "messages queued or in flight";
      cells.processed.textContent = count(actor.processed);
      cells.failed.textContent = count(actor.failed);
      cells.failed.classList.toggle("some", actor.failed > 0);

      fill(cells.spark, sparkline(actor, activity.actors[actor.name] || []));

      const until = freshUntil.get(actor.name);
      row.classList.toggle("fresh", Boolean(until && until > Date.now()));
    }
    $("#actors-empty").hidden = actors.length > 0;
    const busy = actors.reduce((sum, actor) => sum + (actor.in_flight || 0), 0);
    $("#actors-summary").textContent =
      actors.length + (actors.length === 1 ? " actor" : " actors") + " · " + busy + " in flight";
  }

  /** Samples summed in pairs: one bar per 10 s keeps ten minutes readable. */
  function buckets(samples, size) {
    const out = [];
    for (let start = samples.length % size ? -(size - (samples.length % size)) : 0; start < samples.length; start += size) {
      const group = samples.slice(Math.max(0, start), start + size);
      const processed = group.reduce((sum, s) => sum + s.processed, 0);
      const failed = group.reduce((sum, s) => sum + s.failed, 0);
      const spent = group.reduce((sum, s) => sum + (s.mean_ms || 0) * s.processed, 0);
      out.push({ processed, failed, mean_ms: processed ? spent / processed : undefined });
    }
    return out;
  }

  /** Throughput as bars (failures in red), mean latency as a line; newest at the right. */
  function sparkline(actor, samples) {
    const width = 130;
    const height = 34;
    const per = 2;
    const slots = 60;
    const step = width / slots;
    const shown = buckets(samples.slice(-slots * per), per);
    const offset = slots - shown.length;
    const most = Math.max(1, ...shown.map((s) => s.processed));
    const slowest = Math.max(0, ...shown.map((s) => s.mean_ms || 0));
    const chart = svg("svg", { viewBox: "0 0 " + width + " " + height, role: "img" });
    const seconds = ((activity.interval_ms || 5000) * per) / 1000;
    const recent = samples.slice(-12); // the last minute
    const done = recent.reduce((sum, s) => sum + s.processed, 0);
    const spent = recent.reduce((sum, s) => sum + (s.mean_ms || 0) * s.processed, 0);
    const title = svg("title");
    title.textContent =
      actor.name + ", one bar per " + seconds + " s: messages finished (failed in red) and their mean processing time (line); last minute: " +
      done + " messages" + (done ? ", mean " + duration(spent / done) : "");
    chart.append(title);
    chart.append(svg("line", { class: "base", x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5 }));
    const bars = svg("g", { class: "bars" });
    const barWidth = Math.max(0.8, step - 0.6).toFixed(2);
    shown.forEach((s, i) => {
      if (!s.processed) return;
      const x = ((offset + i) * step).toFixed(2);
      const h = Math.max(1.5, (s.processed / most) * (height - 4));
      bars.append(svg("rect", { x, y: (height - h).toFixed(2), width: barWidth, height: h.toFixed(2) }));
      if (s.failed) {
        const f = Math.max(1.5, (s.failed / most) * (height - 4));
        bars.append(svg("rect", { class: "failed", x, y: (height - f).toFixed(2), width: barWidth, height: f.toFixed(2) }));
      }
    });
    chart.append(bars);
    if (slowest > 0) {
      // One line per run of buckets with traffic: a gap stays a gap.
      const runs = [[]];
      let last = null;
      shown.forEach((s, i) => {
        if (s.mean_ms === undefined) {
          if (runs[runs.length - 1].length) runs.push([]);
          return;
        }
        const x = (offset + i + 0.5) * step;
        const y = height - 3 - (s.mean_ms / slowest) * (height - 8);
        last = [x, y];
        runs[runs.length - 1].push(last);
      });
      for (const run of runs) {
        if (run.length > 1) chart.append(svg("polyline", { points: run.map(([x, y]) => x.toFixed(2) + "," + y.toFixed(2)).join(" ") }));
      }
      if (last) chart.append(svg("circle", { class: "dot", cx: last[0].toFixed(2), cy: last[1].toFixed(2), r: 1.8 }));
    }
    const caption = el(
      "span",
      { class: "caption" },
      el("span", { text: count(done) + "/min" }),
      el("br"),
      el("span", { text: done ? duration(spent / done) : "–" }),
    );
    caption.title = "last minute: messages finished, and their mean processing time";
    return el("div", { class: "spark" }, chart, caption);
  }

  async function removeActor(name, button) {
    if (!button.classList.contains("armed")) {
      button.classList.add("armed");
      button.textContent = "Confirm";
      setTimeout(() => {
        button.classList.remove("armed");
        button.textContent = "Remove";
      }, 4000);
      return;
    }
    button.disabled = true;
    try {
      const answer = await request("/v1/actors/" + encodeURIComponent(name), { method: "DELETE", headers: authHeaders() });
      if (answer.ok) {
        $("#actors-error").textContent = "";
        refreshSoon();
      } else {
        showApiError($("#actors-error"), answer);
      }
    } catch (error) {
      $("#actors-error").textContent = "node unreachable: " + error.message;
    } finally {
      button.disabled = false;
      button.classList.remove("armed");
      button.textContent = "Remove";
    }
  }

  // ---- Failures ------------------------------------------------------------------

  let failuresShown = "";

  function renderFailures(failures) {
    const key = failures.map((f) => f.id + ":" + f.errors.length).join(",");
    $("#failures-empty").hidden = failures.length > 0;
    if (key === failuresShown) return; // keeps open details open
    failuresShown = key;
    const list = $("#failures");
    list.textContent = "";
    for (const failure of failures) {
      for (const error of failure.errors.length ? failure.errors : [{}]) list.append(failureItem(failure, error));
    }
  }

  function failureItem(failure, error) {
    const details = (error && error.details) || {};
    const type = details.type || error.error || "failed";
    const message = details.message || error.error || "";
    const extra = [];
    if (details.traceback) extra.push(el("h4", { class: "sr-only", text: "Traceback" }), el("pre", { class: "traceback", text: details.traceback }));
    if (error.original_payload !== undefined) {
      extra.push(el("pre", { class: "original", text: "original payload: " + JSON.stringify(error.original_payload, null, 2) }));
    }
    return el(
      "li",
      { class: "failure", "data-id": failure.id },
      el(
        "div",
        { class: "line1" },
        el("span", { class: "type", text: type }),
        details.actor ? el("span", { class: "muted", text: "at " + details.actor }) : null,
      ),
      el("div", { class: "message", text: message }),
      el(
        "div",
        { class: "meta" },
        el("code", { title: failure.id, text: shortId(failure.id) }),
        el("button", { type: "button", class: "quiet", text: "Follow", "aria-label": "Follow envelope " + failure.id, onclick: () => follow(failure.id) }),
      ),
      extra.length ? el("details", {}, el("summary", { text: details.traceback ? "traceback and payload" : "payload" }), extra) : null,
    );
  }

  // ---- Refreshing ----------------------------------------------------------------

  let timer = null;
  let retryMs = 1000;

  async function refresh() {
    clearTimeout(timer);
    try {
      const [actors, ready, failures, history] = await Promise.all([
        request("/v1/actors"),
        request("/readyz"),
        request("/v1/envelopes?status=failed&limit=" + FAILURES_SHOWN),
        request("/v1/activity"),
      ]);
      setReachable(true);
      retryMs = 1000;
      if (history.ok && history.body) activity = history.body;
      if (actors.ok && Array.isArray(actors.body)) renderActors(actors.body);
      if (failures.ok && Array.isArray(failures.body)) renderFailures(failures.body);
      const why = (ready.text || "").trim();
      if (ready.status === 200 && why === "ready") setPill($("#readiness"), "ok", "ready");
      // Ready, with something to say (an actor that cannot serve, a broken record).
      else if (ready.status === 200) setPill($("#readiness"), "warn", why);
      else setPill($("#readiness"), "warn", why || "not ready");
      $("#readiness").title = "GET /readyz: " + why;
      $("#updated").textContent = "updated " + clock(new Date());
      timer = setTimeout(refresh, REFRESH_MS);
    } catch (error) {
      if (!(error instanceof Unreachable)) throw error;
      setReachable(false, "(" + error.message + "; next try in " + Math.round(retryMs / 1000) + " s)");
      timer = setTimeout(refresh, retryMs);
      retryMs = Math.min(RETRY_MAX_MS, retryMs * 2);
    }
  }

  function refreshSoon() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 50);
  }

  // ---- Submitting and following ------------------------------------------------------

  let following = null;

  function parseJson(text, what) {
    if (!text.trim()) return { value: undefined };
    try {
      return { value: JSON.parse(text) };
    } catch (error) {
      return { error: what + " is not valid JSON: " + error.message };
    }
  }

  async function submit(event) {
    event.preventDefault();
    const problem = $("#submit-error");
    problem.textContent = "";
    const route = $("#route").value.split(/[\s,]+/).filter(Boolean);
    if (!route.length) {
      problem.textContent = "name at least one actor";
      $("#route").focus();
      return;
    }
    const payload = parseJson($("#payload").value, "the payload");
    const headers = parseJson($("#headers").value, "the headers");
    for (const [parsed, field] of [[payload, "#payload"], [headers, "#headers"]]) {
      if (parsed.error) {
        problem.textContent = parsed.error;
        $(field).focus();
        return;
      }
    }
    const body = { route };
    if (payload.value !== undefined) body.payload = payload.value;
    if (headers.value !== undefined) body.headers = headers.value;
    const button = $("#submit-button");
    button.disabled = true;
    try {
      const answer = await request("/v1/envelopes", {
        method: "POST",
        headers: Object.assign({ "Content-Type": "application/json" }, authHeaders()),
        body: JSON.stringify(body),
      });
      if (answer.status === 202 && answer.body && answer.body.id) {
        $("#token-form").classList.remove("needed");
        follow(answer.body.id);
      } else {
        showApiError(problem, answer);
      }
    } catch (error) {
      problem.textContent = "node unreachable: " + error.message;
    } finally {
      button.disabled = false;
    }
  }

  /** Follows envelope `id` to its end over `GET /v1/envelopes/{id}/events`. */
  function follow(id) {
    if (following) following.close();
    const panel = $("#follow");
    const status = el("span", { id: "follow-status", class: "pill", "data-state": "pending", text: "pending" });
    const note = el("span", { class: "muted", id: "follow-note" });
    const hops = el("ol", { class: "hops", id: "hops" });
    const ended = el("div", { class: "ended", id: "ended" });
    panel.textContent = "";
    panel.append(
      el("div", { class: "follow-head" }, el("strong", { text: "Envelope" }), el("code", { id: "follow-id", text: id }), status, note),
      hops,
      ended,
    );
    const rows = new Map();
    let first = null;
    const state = { id, source: null, done: false };

    function onProgress(message) {
      const event = JSON.parse(message.data);
      const at = Date.parse(event.at);
      if (first === null) first = at;
      const key = event.envelope_id + "|" + (event.branch || "") + "|" + event.index;
      let row = rows.get(key);
      if (!row) {
        row = {
          li: el("li", { class: "hop" }),
          stages: el("div", { class: "stages" }),
        };
        row.li.append(
          el("div", { class: "who" }, el("span", { text: event.actor }), event.branch ? el("span", { class: "branch", text: "branch " + event.branch }) : null),
          row.stages,
        );
        row.li.dataset.actor = event.actor;
        rows.set(key, row);
        hops.append(row.li);
      }
      row.li.dataset.stage = event.stage;
      row.stages.append(el("span", { class: "stage " + event.stage }, event.stage, el("span", { class: "t", text: "+" + (at - first < 1000 ? Math.round(at - first) + " ms" : duration(at - first)) })));
      if (event.stage === "completed" && event.next && event.next.length) {
        const targets = event.next.length > 1 ? event.next.length + " branches: " + event.next.join(", ") : event.next[0];
        row.stages.append(el("span", { class: "next", text: "→ " + targets }));
      }
      if (event.stage === "failed" && event.message) row.li.append(el("div", { class: "message", text: event.message }));
    }

    function onOutcome(message) {
      const view = JSON.parse(message.data);
      finish(view);
    }

    function finish(view) {
      state.done = true;
      if (state.source) state.source.close();
      setPill(status, view.status, view.status);
      status.dataset.state = view.status;
      note.textContent = "";
      ended.textContent = "";
      if (view.results && view.results.length) {
        ended.append(el("div", {}, el("h3", { text: view.results.length > 1 ? "Results (" + view.results.length + ")" : "Result" }), el("pre", { id: "follow-result", text: JSON.stringify(view.result !== undefined ? view.result : view.results.length === 1 ? view.results[0] : view.results, null, 2) })));
      }
      for (const error of view.errors || []) {
        const details = error.details || {};
        ended.append(
          el(
            "div",
            { class: "failure" },
            el("div", { class: "line1" }, el("span", { class: "type", text: details.type || error.error || "failed" }), details.actor ? el("span", { class: "muted", text: "at " + details.actor }) : null),
            el("div", { class: "message", text: details.message || error.error || "" }),
            details.traceback ? el("pre", { class: "traceback", text: details.traceback }) : null,
          ),
        );
      }
    }

    async function explain() {
      // The stream was refused or closed: ask the node what it knows of the envelope.
      try {
        const answer = await request("/v1/envelopes/" + encodeURIComponent(id));
        if (answer.ok && answer.body) {
          if (answer.body.status !== "pending") finish(answer.body);
        } else {
          setPill(status, "bad", "unknown");
          note.textContent = apiError(answer).message;
          state.done = true;
        }
      } catch (_) {
        note.textContent = "node unreachable; following again when it is back";
      }
    }

    function open() {
      if (state.done) return;
      const source = new EventSource("/v1/envelopes/" + encodeURIComponent(id) + "/events");
      state.source = source;
      source.addEventListener("progress", onProgress);
      source.addEventListener("outcome", onOutcome);
      source.addEventListener("evicted", () => {
        note.textContent = "the node dropped this envelope's record to stay within its bounds";
        state.done = true;
        source.close();
      });
      source.addEventListener("open", () => {
        if (!state.done) note.textContent = "";
      });
      source.onerror = () => {
        if (state.done) return;
        if (source.readyState === EventSource.CLOSED) explain();
        else note.textContent = "connection lost, reconnecting…";
      };
    }

    state.close = () => {
      state.done = true;
      if (state.source) state.source.close();
    };
    state.resume = () => {
      if (!state.done && (!state.source || state.source.readyState === EventSource.CLOSED)) explain().then(() => open());
    };
    following = state;
    open();
  }

  function resumeFollowing() {
    if (following && following.resume) following.resume();
  }

  // ---- Deploying ---------------------------------------------------------------------

  let nameFromFile = "";

  function suggestName() {
    const file = $("#deploy-file").files[0];
    if (!file) return;
    const stem = file.name.replace(/\.wasm$/i, "").toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+/, "").slice(0, 63);
    const input = $("#deploy-name");
    if (!input.value || input.value === nameFromFile) {
      input.value = stem;
      nameFromFile = stem;
    }
  }

  function deploy(event) {
    event.preventDefault();
    const status = $("#deploy-status");
    status.className = "";
    status.textContent = "";
    const file = $("#deploy-file").files[0];
    const name = $("#deploy-name").value.trim();
    if (!file) {
      status.className = "bad";
      status.textContent = "choose a component file first";
      $("#deploy-file").focus();
      return;
    }
    if (!name) {
      status.className = "bad";
      status.textContent = "name the actor";
      $("#deploy-name").focus();
      return;
    }
    const progress = $("#deploy-progress");
    const percent = $("#deploy-percent");
    const button = $("#deploy-button");
    $("#deploy-upload").hidden = false;
    progress.value = 0;
    percent.textContent = "0%";
    button.disabled = true;

    const xhr = new XMLHttpRequest();
    xhr.open("PUT", "/v1/actors/" + encodeURIComponent(name));
    xhr.setRequestHeader("Content-Type", "application/wasm");
    for (const [key, value] of Object.entries(authHeaders())) xhr.setRequestHeader(key, value);
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      const done = Math.round((e.loaded / e.total) * 100);
      progress.value = done;
      percent.textContent = done + "% of " + bytes(e.total);
    };
    xhr.upload.onload = () => {
      progress.value = 100;
      percent.textContent = "uploaded " + bytes(file.size) + ", compiling…";
    };
    xhr.onload = () => {
      button.disabled = false;
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch (_) {
        body = null;
      }
      const answer = { status: xhr.status, ok: xhr.status >= 200 && xhr.status < 300, body, text: xhr.responseText };
      if (answer.ok && body) {
        $("#token-form").classList.remove("needed");
        status.className = "ok";
        status.textContent =
          xhr.status === 201
            ? "deployed " + body.name + " version " + body.version + " (" + String(body.digest || "").slice(0, 12) + ")"
            : "unchanged: " + body.name + " already runs these bytes as version " + body.version;
        percent.textContent = "done";
        freshUntil.set(body.name, Date.now() + 4000);
        refreshSoon();
      } else {
        status.className = "bad";
        showApiError(status, answer);
      }
    };
    xhr.onerror = () => {
      button.disabled = false;
      status.className = "bad";
      status.textContent = "node unreachable: the upload did not get through";
    };
    xhr.send(file);
  }

  // ---- Start -------------------------------------------------------------------------

  function start() {
    $("#node-host").textContent = location.host;
    const input = $("#token");
    input.value = sessionStorage.getItem(TOKEN_KEY) || "";
    input.addEventListener("input", () => {
      sessionStorage.setItem(TOKEN_KEY, input.value);
      $("#token-form").classList.remove("needed");
    });
    $("#token-form").addEventListener("submit", (event) => event.preventDefault());
    $("#submit-form").addEventListener("submit", submit);
    $("#deploy-form").addEventListener("submit", deploy);
    $("#deploy-file").addEventListener("change", suggestName);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) refreshSoon();
    });
    refresh();
  }

  start();
})();
