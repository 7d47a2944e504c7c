// The voicedock web console: plain JavaScript, no build step, nothing loaded from elsewhere.
// It calls the same REST API as any client; the session cookie stands in for the Bearer
// header, and every request that changes state sends the session's CSRF token.
"use strict";

const POLL_MS = 2000;
const TERMINAL = new Set(["ended", "failed"]);
const state = {
  csrf: null, scope: null, listen: false, timer: null, stream: null, callId: null, seen: new Set(),
  agents: {}, // a squad's call: each member's assistant name, by member
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) node.setAttribute(name, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  }
  return node;
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.message || body.error)) || `HTTP ${status}`);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
  const resp = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  const data = text ? JSON.parse(text) : null;
  if (resp.status === 401 && !path.startsWith("/console/session")) {
    signedOut("Your session has ended (signed out, expired or the key was revoked).");
  }
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

function show(view) {
  for (const id of ["sign-in-view", "calls-view", "call-view", "tests-view"]) $(id).hidden = id !== view;
  $("account").hidden = view === "sign-in-view";
}

function stopLive() {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
  if (state.stream) state.stream.close();
  state.stream = null;
  stopListening("off");
}

function signedOut(message) {
  stopLive();
  state.csrf = null;
  show("sign-in-view");
  $("sign-in-error").textContent = message || "";
  $("api-key").focus();
}

function signedIn(session) {
  state.csrf = session.csrf_token;
  state.scope = session.key.scope;
  state.listen = session.key.listen;
  const name = session.key.name ? `“${session.key.name}”` : "an unnamed key";
  $("who").textContent = `Signed in with ${name} (${session.key.scope.replace("_", "-")})`;
}

// -- sign in / out ---------------------------------------------------------------------------

$("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = $("api-key").value.trim();
  if (!key) {
    $("sign-in-error").textContent = "Enter an API key.";
    return;
  }
  try {
    signedIn(await api("POST", "/console/session", { api_key: key }));
    $("api-key").value = "";
    $("sign-in-error").textContent = "";
    if (!location.hash.startsWith("#/calls")) location.hash = "#/calls";
    else route();
  } catch (err) {
    $("sign-in-error").textContent =
      err.status === 401 ? "Sign-in refused: this API key is not valid (or was revoked)." : err.message;
  }
});

$("sign-out").addEventListener("click", async () => {
  try { await api("DELETE", "/console/session"); } catch (err) { /* signed out anyway */ }
  signedOut("Signed out.");
});

// -- calls list ------------------------------------------------------------------------------

function fmtTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

function statusCell(status) {
  return el("td", { class: `status status-${status}` }, status);
}

function listQuery() {
  const params = new URLSearchParams();
  const form = new FormData($("filters"));
  for (const [name, value] of form.entries()) {
    if (!value) continue;
    if (name.endsWith("_date")) params.set(name, new Date(value).toISOString());
    else params.set(name, value);
  }
  return params.toString();
}

async function loadCalls() {
  try {
    const page = await api("GET", `/calls?${listQuery()}`);
    const rows = page.calls.map((call) => el("tr", { "data-call-id": call.id },
      el("td", {}, el("a", { href: `#/calls/${call.id}` }, call.id)),
      statusCell(call.status),
      el("td", {}, call.caller_phone || "—"),
      el("td", {}, call.agent_name || "—"),
      el("td", {}, fmtTime(call.created_at)),
      el("td", {}, call.duration_seconds === null ? "—" : `${call.duration_seconds} s`)));
    $("calls-table").tBodies[0].replaceChildren(...rows);
    $("calls-state").textContent =
      `${page.pagination.total} call(s); updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    if (err.status !== 401) $("calls-state").textContent = `Could not list calls: ${err.message}`;
  }
}

// The newest campaigns with their progress (GET /campaigns, then each one's detail).
async function loadCampaigns() {
  let listed = [];
  try {
    const body = await api("GET", "/campaigns?limit=10");
    listed = body && Array.isArray(body.campaigns) ? body.campaigns : [];
  } catch (err) { listed = []; }
  const campaigns = await Promise.all(listed.map(async (c) => {
    try { return await api("GET", `/campaigns/${encodeURIComponent(c.id)}`); } catch (err) { return c; }
  }));
  $("campaigns").hidden = campaigns.length === 0;
  $("campaign-list").replaceChildren(...campaigns.map((c) => {
    const progress = c.progress || { total: 0, by_state: {} };
    const total = progress.total || 0;
    const done = (progress.by_state && progress.by_state.done) || 0;
    return el("li", {}, `${c.name || c.id}: ${c.status || ""} `,
      el("progress", { max: String(total || 1), value: String(done),
        "aria-label": `${c.name || c.id} progress` }), ` ${done}/${total}`);
  }));
}

function showCalls() {
  stopLive();
  show("calls-view");
  loadCalls();
  loadCampaigns();
  state.timer = setInterval(loadCalls, POLL_MS);
}

$("filters").addEventListener("submit", (event) => {
  event.preventDefault();
  loadCalls();
});

// -- one call --------------------------------------------------------------------------------

function facts(target, pairs) {
  const items = [];
  for (const [label, value] of pairs) {
    if (value === null || value === undefined || value === "") continue;
    items.push(el("dt", {}, label), el("dd", {}, value));
  }
  target.replaceChildren(...items);
}

function renderDetail(call) {
  nameMembers(call);
  facts($("call-facts"), [
    ["Status", call.status],
    ["Direction", call.direction],
    ["Remote party", call.caller_phone],
    ["Our number", call.assistant_phone],
    ["Assistant", call.agent_name],
    ["Created", fmtTime(call.created_at)],
    ["Answered", call.started_at && fmtTime(call.started_at)],
    ["Ended", call.ended_at && fmtTime(call.ended_at)],
    ["Duration", call.duration_seconds !== null ? `${call.duration_seconds} s` : null],
    ["End reason", call.end_reason],
    ["Error", call.error],
    ["Transferred to", call.transferred_to],
    ["PBX", call.pbx],
    ["Node", call.node],
    ["Placed with key", call.api_key_id],
  ]);
  const statusDd = $("call-facts").querySelector("dd");
  if (statusDd) statusDd.className = `status status-${call.status}`;
  $("call-facts").setAttribute("data-status", call.status);
  const analysis = call.analysis_result;
  facts($("analysis"), analysis ? [
    ["Summary", analysis.summary],
    ["Sentiment", analysis.sentiment],
    ["Method", analysis.method],
  ] : [["", "Not yet available (made when the call ends)."]]);
  $("latency").tBodies[0].replaceChildren(...(call.latency || []).map((turn, i) => {
    const ms = (v) => (typeof v === "number" ? Math.round(v) : "—");
    return el("tr", {}, el("th", { scope: "row" }, i + 1), el("td", {}, ms(turn.endpointing_ms)),
      el("td", {}, ms(turn.stt_final_ms)), el("td", {}, ms(turn.llm_first_token_ms)),
      el("td", {}, ms(turn.tts_first_audio_ms)), el("td", {}, ms(turn.first_frame_sent_ms)));
  }));
  // Recordings are shown only where the call has one.
  const recording = call.recording_url || (Array.isArray(call.recordings) && call.recordings[0]
    && call.recordings[0].url);
  $("recording").hidden = !recording;
  if (recording && $("recording-audio").getAttribute("src") !== recording) {
    $("recording-audio").setAttribute("src", recording);
  }
  const live = !TERMINAL.has(call.status);
  const canControl = live && state.scope !== "read_only";
  $("read-only-note").hidden = state.scope !== "read_only";
  for (const node of $("controls").querySelectorAll("input, select, button")) {
    node.disabled = !canControl;
  }
  for (const node of $("supervise").querySelectorAll("input, button")) {
    node.disabled = !canControl;
  }
  // A key with the listen grant (a read-only one where the operator granted it), while the
  // call is live; stopping is always possible.
  $("listen").disabled = !(live && state.listen) && !listening.ws;
}

// Who each transcript role is: the assistant's tool calls and their results are the
// assistant's doing, never the caller's words.
const SPEAKERS = {
  user: "Caller:",
  assistant: "Assistant:",
  supervisor: "Supervisor (whisper):",
  tool_calls: "Assistant (tool call):",
  tool: "Tool result:",
  system: "System:",
};

// Who said a message: a squad's member speaks by its assistant's name (its member name until
// the call's record names that assistant).
function speaker(data) {
  if (data.role !== "assistant" || !data.member) return SPEAKERS[data.role] || `${data.role}:`;
  return `${state.agents[data.member] || data.member}:`;
}

function addTranscript(data) {
  const interrupted = data.role === "assistant" && data.interrupted === true;
  const kind = `${data.role}${interrupted ? " interrupted" : ""}`;
  const item = el("li", { class: kind, "data-member": data.member },
    el("span", { class: "who" }, speaker(data)),
    el("span", { class: "said" }, data.content));
  if (interrupted) item.append(el("span", { class: "cut" }, "— cut off at barge-in"));
  $("transcript").append(item);
  if (data.member && !(data.member in state.agents)) refreshDetail(state.callId);
}

// The squad's members as the call's record names them: each assistant line relabelled.
function nameMembers(call) {
  for (const member of call.members || []) {
    state.agents[member.member] = member.agent_name || member.member;
  }
  for (const item of $("transcript").querySelectorAll("li.assistant[data-member]")) {
    const data = { role: "assistant", member: item.getAttribute("data-member") };
    item.querySelector(".who").textContent = speaker(data);
  }
}

function addEvent(message) {
  const text = `${new Date(message.timestamp).toLocaleTimeString()} ${message.type} ` +
    JSON.stringify(message.type === "transcript"
      ? { role: message.data.role, interrupted: message.data.interrupted } : message.data);
  $("events").append(el("li", {}, text));
}

async function refreshDetail(id) {
  try {
    const call = await api("GET", `/calls/${id}`);
    if (state.callId === id) renderDetail(call);
    return call;
  } catch (err) {
    if (err.status === 404) $("call-facts").replaceChildren(el("dd", {}, "No such call."));
    return null;
  }
}

function follow(id) {
  const stream = new EventSource(`/calls/${encodeURIComponent(id)}/events`);
  state.stream = stream;
  const handle = (event) => {
    if (state.seen.has(event.lastEventId)) return;
    state.seen.add(event.lastEventId);
    const message = JSON.parse(event.data);
    if (message.type === "transcript") addTranscript(message.data);
    addEvent(message);
    if (message.type === "status" || message.type === "handoff") refreshDetail(id);
  };
  const types = ["status", "transcript", "control", "transfer", "security", "resumed", "handoff"];
  for (const type of types) {
    stream.addEventListener(type, handle);
  }
  stream.onerror = async () => {
    // Ended by the server (the call ended, or the key was revoked): see which.
    const call = await refreshDetail(id);
    if (call && TERMINAL.has(call.status)) stream.close();
  };
}

async function showCall(id) {
  stopLive();
  show("call-view");
  state.callId = id;
  state.seen = new Set();
  state.agents = {};
  $("call-id").textContent = id;
  $("transcript").replaceChildren();
  $("events").replaceChildren();
  $("control-result").textContent = "";
  const call = await refreshDetail(id);
  if (!call) return;
  follow(id);
  // The analysis and latency are stored after the call ends: look again until they are.
  state.timer = setInterval(async () => {
    const now = await refreshDetail(id);
    if (now && TERMINAL.has(now.status) && now.analysis_result) clearInterval(state.timer);
  }, POLL_MS);
}

async function control(command, done) {
  $("control-result").textContent = "Sending…";
  try {
    const result = await api("POST", `/calls/${state.callId}/control`, command);
    $("control-result").textContent = `${command.type}: ${result.message}`;
    if (done) done();
  } catch (err) {
    $("control-result").textContent = `${command.type} refused: ${err.message}`;
  }
}

$("say-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const content = $("say-text").value.trim();
  if (content) control({ type: "say", content }, () => { $("say-text").value = ""; });
});
$("context-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const content = $("context-text").value.trim();
  if (content) control({ type: "inject-context", content }, () => { $("context-text").value = ""; });
});
$("transfer-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const destination = $("transfer-to").value.trim();
  if (destination) control({ type: "transfer", destination, mode: $("transfer-mode").value });
});
$("end-form").addEventListener("submit", (event) => {
  event.preventDefault();
  control({ type: "end-call" });
});

// -- supervise: listen, whisper, take over (docs/live-listen.md) ------------------------------

// The live listen stream: a hello (JSON), then one binary frame per 20 ms of either side
// (u8 channel, u8 flags, u16 sequence, u32 ms, then 16-bit PCM), then {"type": "end"}.
// Each frame is decoded into an AudioBuffer and scheduled on its side's own timeline; the
// caller is panned left, the assistant right. The counters are on #listen-state (data-*).
const HEADER_BYTES = 8;
const AHEAD_S = 0.12; // playout delay: absorbs the network's jitter
const MAX_LAG_S = 1.0; // a side further behind than this starts again at the present
const listening = { ws: null, ctx: null, rate: 8000, pans: [], next: [0, 0], frames: [0, 0],
  decoded: 0, state: "off" };
window.voicedockListen = listening;

function listenState(name, text) {
  listening.state = name;
  const node = $("listen-state");
  node.dataset.state = name;
  node.textContent = text;
  const on = name === "connecting" || name === "listening";
  $("listen").textContent = on ? "Stop listening" : "Listen";
  $("listen").setAttribute("aria-pressed", on ? "true" : "false");
}

function countFrames() {
  const node = $("listen-state");
  node.dataset.framesCaller = String(listening.frames[0]);
  node.dataset.framesAssistant = String(listening.frames[1]);
  node.dataset.decoded = String(listening.decoded);
}

function playFrame(data) {
  if (data.byteLength < HEADER_BYTES) return;
  const view = new DataView(data);
  const channel = view.getUint8(0);
  if (channel > 1) return;
  const samples = new Int16Array(data, HEADER_BYTES, (data.byteLength - HEADER_BYTES) >> 1);
  listening.frames[channel] += 1;
  const ctx = listening.ctx;
  if (ctx && samples.length) {
    const buffer = ctx.createBuffer(1, samples.length, listening.rate);
    const floats = buffer.getChannelData(0);
    for (let i = 0; i < samples.length; i += 1) floats[i] = samples[i] / 32768;
    listening.decoded += 1;
    const source = ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(listening.pans[channel]);
    const now = ctx.currentTime;
    let at = listening.next[channel];
    if (at < now || at > now + MAX_LAG_S) at = now + AHEAD_S;
    source.start(at);
    listening.next[channel] = at + buffer.duration;
  }
  countFrames();
}

function startListening() {
  const id = state.callId;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/calls/${encodeURIComponent(id)}/listen`);
  ws.binaryType = "arraybuffer";
  listening.ws = ws;
  listening.frames = [0, 0];
  listening.decoded = 0;
  listening.next = [0, 0];
  countFrames();
  listenState("connecting", "Connecting…");
  ws.onmessage = (event) => {
    if (typeof event.data !== "string") {
      playFrame(event.data);
      return;
    }
    const message = JSON.parse(event.data);
    if (message.type === "hello") {
      listening.rate = message.sample_rate;
      const ctx = new AudioContext();
      listening.pans = [-1, 1].map((side) => {
        const pan = new StereoPannerNode(ctx, { pan: side });
        pan.connect(ctx.destination);
        return pan;
      });
      listening.ctx = ctx;
      ctx.resume().catch(() => {});
      if (message.supervisor_extension && !$("take-over-to").value) {
        $("take-over-to").value = message.supervisor_extension;
      }
      listenState("listening", "Listening (caller left, assistant right).");
    } else if (message.type === "end") {
      const dropped = message.dropped_frames ? `; ${message.dropped_frames} frames dropped` : "";
      stopListening("ended", `The stream ended (${message.reason}${dropped}).`);
    }
  };
  ws.onclose = () => {
    if (listening.ws !== ws) return;
    if (listening.state === "connecting") {
      stopListening("refused", "Could not listen: the call's audio has not started, it " +
        "runs on another node, or it has as many listeners as it may. Try again.");
    } else {
      stopListening("ended", listening.state === "listening" ? "The stream ended." : "");
    }
  };
}

function stopListening(name, text) {
  const ws = listening.ws;
  listening.ws = null;
  if (ws && ws.readyState <= WebSocket.OPEN) ws.close();
  if (listening.ctx) listening.ctx.close().catch(() => {});
  listening.ctx = null;
  if (name !== "off" || listening.state !== "off") listenState(name, text || "");
}

$("listen").addEventListener("click", () => {
  if (listening.ws) stopListening("stopped", "Stopped listening.");
  else startListening();
});
$("whisper-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const content = $("whisper-text").value.trim();
  if (!content) return;
  const command = { type: "inject-context", content, source: "supervisor",
    trigger_response: $("whisper-now").checked };
  control(command, () => { $("whisper-text").value = ""; });
});
$("take-over-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const destination = $("take-over-to").value.trim();
  if (destination) {
    control({ type: "transfer", destination, mode: "warm",
      announcement: "I am putting you through to my supervisor." });
  }
});

// -- this node -------------------------------------------------------------------------------

// GET /health (public) says whether the node serving the console drains: it takes no new
// call, and stops once its calls have ended (SIGTERM, `voicedock nodes drain`).
async function checkNode() {
  let health = null;
  try {
    const resp = await fetch("/health", { headers: { Accept: "application/json" } });
    health = await resp.json();
  } catch (err) { return; }
  const banner = $("node-state");
  banner.hidden = !(health && health.draining);
  banner.textContent = banner.hidden ? "" :
    "This node is draining: it takes no new calls, lets its calls in progress finish, then " +
    "stops. New calls go to the other nodes.";
}

// -- routing ---------------------------------------------------------------------------------

// -- test suites and their runs ---------------------------------------------------------------

const RUNNING = new Set(["queued", "running"]);

async function loadSuites() {
  try {
    const page = await api("GET", "/test-suites?limit=100");
    $("suite-list").replaceChildren(...page.test_suites.map((suite) => {
      const run = el("button", { type: "button", "data-suite-id": suite.id }, "Run");
      run.disabled = state.scope === "read_only";
      run.addEventListener("click", () => runSuite(suite.id));
      return el("li", { "data-suite-id": suite.id }, el("strong", {}, suite.name),
        ` ${suite.scenarios.length} scenario(s)`, run);
    }));
    $("suites-state").textContent = page.test_suites.length ? "" : "No test suites yet (POST /test-suites).";
  } catch (err) {
    if (err.status !== 401) $("suites-state").textContent = `Could not list test suites: ${err.message}`;
  }
}

async function runSuite(suiteId) {
  try {
    const run = await api("POST", `/test-suites/${encodeURIComponent(suiteId)}/runs`, {});
    location.hash = `#/tests/runs/${run.id}`;
  } catch (err) {
    $("suites-state").textContent = `Could not run the suite: ${err.message}`;
  }
}

function turns(list, title) {
  return el("div", {}, el("h5", {}, title), el("ol", { class: "transcript" },
    ...list.map((turn) => el("li", { class: turn.role === "assistant" ? "assistant" : "user" },
      el("span", { class: "who" }, turn.role === "assistant" ? "Assistant:" : "Caller:"), turn.text))));
}

function renderRun(run) {
  $("run").hidden = false;
  $("run-id").textContent = run.id;
  $("run-state").textContent = run.error ? `${run.status}: ${run.error}` : run.status;
  $("run-state").setAttribute("data-status", run.status);
  $("run-results").replaceChildren(...run.results.map((result) => el("article",
    { class: "scenario", "data-outcome": result.outcome },
    el("h4", {}, `${result.name} `, el("span", { class: `outcome-${result.outcome}` }, result.outcome)),
    result.reason ? el("p", { class: "reason" }, result.reason) : "",
    el("ul", { class: "expectations" }, ...result.expectations.map((v) => el("li",
      { class: v.passed ? "passed" : "failed" },
      // A passed judge's verdict carries the judge model's reason too.
      `expectations[${v.index}] (${v.type}): ${v.passed ? "passed" : v.reason}`
        + (v.passed && v.reason ? ` (${v.reason})` : "")))),
    el("div", { class: "sides" }, turns(result.heard, "What the caller heard and said"),
      turns(result.transcript, "The assistant's transcript")),
    result.recording_url ? el("audio", { class: "recording", controls: "", preload: "none",
      src: result.recording_url }) : "",
    result.call_id ? el("p", {}, el("a", { href: `#/calls/${result.call_id}` },
      "The test call (its recording, when the assistant records)")) : "")));
}

async function pollRun(runId) {
  try {
    const run = await api("GET", `/test-runs/${encodeURIComponent(runId)}`);
    renderRun(run);
    if (!RUNNING.has(run.status) && state.timer) {
      clearInterval(state.timer);
      state.timer = null;
    }
  } catch (err) {
    if (err.status !== 401) $("run-state").textContent = `Could not read the run: ${err.message}`;
  }
}

function showTests(runId) {
  stopLive();
  show("tests-view");
  loadSuites();
  $("run").hidden = !runId;
  if (runId) {
    $("run-results").replaceChildren();
    pollRun(runId);
    state.timer = setInterval(() => pollRun(runId), POLL_MS);
  }
}

function route() {
  if (!state.csrf) return;
  const match = location.hash.match(/^#\/calls\/([A-Za-z0-9_.\-]+)$/);
  const run = location.hash.match(/^#\/tests\/runs\/([A-Za-z0-9_.\-]+)$/);
  if (match) showCall(match[1]);
  else if (run) showTests(run[1]);
  else if (location.hash === "#/tests") showTests(null);
  else showCalls();
  $("main").focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);

checkNode();
setInterval(checkNode, POLL_MS);

(async () => {
  try {
    signedIn(await api("GET", "/console/session"));
    route();
  } catch (err) {
    signedOut("");
  }
})();
