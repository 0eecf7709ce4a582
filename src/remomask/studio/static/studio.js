// remomask studio: the page's logic. Talks to the JSON API of docs/studio.md and draws every motion with
// MotionViewer (viewer.js). Errors are shown as the command line prints them: one line "error: ...".
import { MotionViewer, webglAvailable } from "./viewer.js";

const $ = (id) => document.getElementById(id);
const state = { skeleton: null, limits: null, features: {}, parts: [], viewers: [], retrieveViewer: null,
                retrieveShown: [], timelineViewer: null, timelineEdits: [] };
const MAX_EDIT_VIEWERS = 3;   // edit results kept per editor panel (browsers cap live WebGL contexts at ~16)
// Timings of the last Generate (ms, performance.now()): read by the tests and shown in the status line.
window.studioTimings = {};

function showError(el, message) {
  if (!message) { el.hidden = true; el.textContent = ""; return; }
  el.textContent = `error: ${message}`;
  el.hidden = false;
}

async function api(path, body) {
  let response;
  try {
    response = await fetch(path, body === undefined ? {} : {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  } catch (e) {
    throw new Error("the studio server does not answer (is `remomask studio` still running?)");
  }
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (!response.ok) {
    throw new Error(data && data.error ? data.error : `the studio answered HTTP ${response.status}`);
  }
  if (data === null) throw new Error("the studio answered something that is not JSON");
  return data;
}

function numberOrNull(input) {
  const v = input.value.trim();
  if (v === "") return null;
  const x = Number(v);
  return Number.isFinite(x) ? x : v;   // the server answers a non-number with the CLI's message
}

// -- model status ------------------------------------------------------------------------------------------
async function pollHealth() {
  const pill = $("model-status");
  try {
    const h = await api("/api/health");
    state.skeleton = h.skeleton;
    state.limits = h.limits;
    state.features = h.features || {};
    state.parts = h.parts || [];
    $("num-samples").max = String(h.limits.num_samples);
    $("retrieve-k").max = String(h.limits.retrieve_k);
    pill.dataset.status = h.status;
    $("tab-timeline-button").hidden = !(h.features && h.features.compose);
    if (h.status === "loading") {
      pill.textContent = "loading the model…";
      setTimeout(pollHealth, 1000);
    } else if (h.status === "error") {
      pill.textContent = "model failed to load";
      showError($("generate-error"), h.error);
    } else {
      pill.textContent = `model ready (${h.model})`;
    }
  } catch (e) {
    pill.dataset.status = "error";
    pill.textContent = "no server";
    showError($("generate-error"), e.message);
  }
}

// What the loaded model can do (features.edit is known once the model is ready; a result may come first).
async function refreshFeatures() {
  if (state.features.edit) return;
  try {
    const h = await api("/api/health");
    state.features = h.features || {};
    state.parts = h.parts || [];
  } catch (e) { /* the page still shows the result, without the editor */ }
}

// -- generate ----------------------------------------------------------------------------------------------
function link(href, text, name) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  if (name) a.download = name;
  return a;
}

function clearResults() {
  for (const v of state.viewers) v.dispose();
  state.viewers = [];      // the samples' viewers and those of their edits
  $("results").replaceChildren();
  $("result-files").replaceChildren();
  $("result-files").hidden = true;
}

async function toggleEntry(viewer, sample, entry, li, base) {
  const shown = viewer.entries || (viewer.entries = []);
  const at = shown.findIndex((e) => e.id === entry.id);
  if (at >= 0) {
    shown.splice(at, 1);
    li.classList.remove("shown");
  } else {
    const motion = await api(`/api/entries/${encodeURIComponent(entry.id)}`);
    shown.push({ id: entry.id, joints: motion.joints, label: `retrieved: ${motion.caption}`, dim: true });
    li.classList.add("shown");
  }
  viewer.setMotions([base, ...shown]);
}

function sampleCard(result, sample, t0) {
  const card = document.createElement("article");
  card.className = "sample";
  card.dataset.index = String(sample.index);
  const title = document.createElement("h3");
  title.textContent = `Sample ${sample.index + 1} · ${sample.frames} frames (${sample.seconds.toFixed(1)} s, ` +
    `${sample.length_source === "given" ? "requested" : "estimated"} length)`;
  card.appendChild(title);
  const box = document.createElement("div");
  card.appendChild(box);
  const viewer = new MotionViewer(box, state.skeleton, {
    onFirstFrame: (now) => {
      if (sample.index === 0 && window.studioTimings.firstFrame === undefined) {
        window.studioTimings.firstFrame = now - t0;
        $("generate-status").textContent += ` First frame ${((now - t0) / 1000).toFixed(2)} s after Generate.`;
      }
    } });
  state.viewers.push(viewer);
  const base = { joints: sample.joints, label: `generated: ${sample.prompt}` };
  viewer.setMotions([base]);

  const downloads = document.createElement("div");
  downloads.className = "downloads";
  const f = sample.files, n = `sample_${sample.index}`;
  downloads.append(link(`/api/files/${f.bvh}`, "BVH", `${n}.bvh`),
                   link(`/api/files/${f.joints}`, "joints .npy", `${n}.joints.npy`),
                   link(`/api/files/${f.features}`, "features .npy", `${n}.features.npy`),
                   link(`/api/files/${f.video}`, "video", null));
  card.appendChild(downloads);

  const h = document.createElement("h4");
  const gate = result.settings ? result.settings.retrieval_min_score : 0;
  h.textContent = sample.retrieved.length ? "Retrieved from the database (view beside the sample)" :
    gate > 0 && result.settings.retrieval_k > 0 ?
      `No close database entry (best score below the similarity gate ${gate}): generated from the text alone` :
      "No retrieved entries (this model generates without retrieval)";
  card.appendChild(h);
  const list = document.createElement("ul");
  list.className = "retrieved";
  for (const entry of sample.retrieved) {
    const li = document.createElement("li");
    li.dataset.id = entry.id;
    const caption = document.createElement("span");
    caption.className = "caption";
    caption.textContent = entry.caption;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = `score ${entry.score.toFixed(3)} · ${entry.motion_id}`;
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "view";
    button.addEventListener("click", async () => {
      button.disabled = true;
      try { await toggleEntry(viewer, sample, entry, li, base); showError($("generate-error"), null); }
      catch (e) { showError($("generate-error"), e.message); }
      finally { button.disabled = false; }
    });
    li.append(caption, score, button);
    list.appendChild(li);
  }
  card.appendChild(list);
  if (state.features.edit) {
    card.appendChild(editorPanel({ motion: sample.motion, frames: sample.frames, label: sample.prompt }, viewer,
                                 state.viewers));
  }
  return card;
}

// -- editing (ReMoMaskPipeline.edit through /api/edit) -------------------------------------------------------
function fps() { return (state.skeleton && state.skeleton.fps) || 20; }

function secondsText(frames) { return String(Math.round((frames / fps()) * 100) / 100); }

/**
 * The "Edit a range" panel of a motion the studio made: a frame range (start / end in seconds, tied to the
 * viewer's scrub bar), body parts, a new text and a seed; "Regenerate" posts /api/edit and shows the result
 * in a new viewer (its edited range marked on the scrub bar) with its downloads and its own editor panel.
 * @param {{motion: string, frames: number, label: string}} source  the motion (its /api "motion" id)
 * @param {MotionViewer} viewer  the source's viewer (the selection is marked on it)
 * @param {MotionViewer[]} registry  where the result viewers are recorded (disposed with their page part)
 */
function editorPanel(source, viewer, registry) {
  const panel = document.createElement("details");
  panel.className = "editor";
  panel.dataset.motion = source.motion;
  const summary = document.createElement("summary");
  summary.textContent = "Edit a range…";
  panel.appendChild(summary);
  const form = document.createElement("form");
  form.className = "edit-form";
  form.noValidate = true;
  form.autocomplete = "off";
  const seconds = source.frames / fps();
  const number = (cls, value, label) => {
    const l = document.createElement("label");
    l.textContent = label;
    const input = document.createElement("input");
    input.type = "number"; input.className = cls; input.min = "0"; input.max = String(seconds);
    input.step = "0.05"; input.value = value;
    l.appendChild(input);
    return [l, input];
  };
  const fromScrubber = (title) => {
    const b = document.createElement("button");
    b.type = "button"; b.textContent = "← viewer's frame"; b.title = title;
    return b;
  };
  // default selection: the middle third, whole frames
  const [startLabel, start] = number("edit-start", secondsText(Math.round(source.frames / 3)), "Start (s)");
  const [endLabel, end] = number("edit-end", secondsText(Math.round((2 * source.frames) / 3)), "End (s)");
  const setStart = fromScrubber("start at the frame the viewer shows");
  setStart.className = "edit-set-start";
  const setEnd = fromScrubber("end after the frame the viewer shows");
  setEnd.className = "edit-set-end";
  const parts = document.createElement("fieldset");
  parts.className = "edit-parts";
  const legend = document.createElement("legend");
  legend.textContent = "Body parts (none: the whole body)";
  parts.appendChild(legend);
  for (const name of state.parts) {
    const l = document.createElement("label");
    const c = document.createElement("input");
    c.type = "checkbox"; c.value = name; c.name = "part";
    l.append(c, document.createTextNode(name.replace("_", " ")));
    parts.appendChild(l);
  }
  const textLabel = document.createElement("label");
  textLabel.className = "wide";
  textLabel.textContent = "New text for the range";
  const text = document.createElement("input");
  text.type = "text"; text.className = "edit-text"; text.maxLength = 500; text.placeholder = "a person jumps";
  textLabel.appendChild(text);
  const [seedLabel, seed] = number("edit-seed", "", "Seed");
  seed.removeAttribute("max"); seed.step = "1"; seed.placeholder = "random";
  const run = document.createElement("button");
  run.type = "submit"; run.className = "edit-run"; run.textContent = "Regenerate";
  form.append(startLabel, setStart, endLabel, setEnd, seedLabel, parts, textLabel, run);
  const error = document.createElement("p");
  error.className = "error edit-error"; error.setAttribute("role", "alert"); error.hidden = true;
  const status = document.createElement("p");
  status.className = "status edit-status";
  const results = document.createElement("div");
  results.className = "edits";
  panel.append(form, error, status, results);

  const frameOf = (input) => {
    const x = numberOrNull(input);
    return typeof x === "number" ? Math.round(x * fps()) : x;   // a non-number goes to the server as typed
  };
  const mark = () => {
    const a = frameOf(start), b = frameOf(end);
    if (panel.open && typeof a === "number" && typeof b === "number") viewer.setRange(a, b, "selection");
    else viewer.setRange(null, 0, "selection");
  };
  panel.addEventListener("toggle", mark);
  start.addEventListener("input", () => {
    mark();
    if (typeof frameOf(start) === "number") viewer.seek(frameOf(start));
  });
  end.addEventListener("input", () => {
    mark();
    if (typeof frameOf(end) === "number") viewer.seek(frameOf(end) - 1);
  });
  setStart.addEventListener("click", () => { start.value = secondsText(viewer.frame); mark(); });
  setEnd.addEventListener("click", () => { end.value = secondsText(viewer.frame + 1); mark(); });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, null);
    const chosen = [...parts.querySelectorAll("input:checked")].map((c) => c.value);
    const body = { motion: source.motion, text: text.value, frames: [frameOf(start), frameOf(end)],
                   parts: chosen.length ? chosen : null, seed: numberOrNull(seed) };
    run.disabled = true;
    status.textContent = "regenerating…";
    try {
      const r = await api("/api/edit", body);
      status.textContent = `Edited frames ${r.range[0]}-${r.range[1]} in ${r.seconds_taken.toFixed(2)} s ` +
        `(seed ${r.seed}).`;
      seed.placeholder = `random (last: ${r.seed})`;
      const card = editCard(r, registry);
      results.prepend(card);
      card.scrollIntoView({ block: "nearest" });
      const cards = [...results.children];
      for (const old of cards.slice(MAX_EDIT_VIEWERS)) {
        for (const v of registry.filter((v) => old.contains(v.container))) {
          v.dispose();
          registry.splice(registry.indexOf(v), 1);
        }
        old.remove();
      }
    } catch (e) {
      status.textContent = "";
      showError(error, e.message);
    } finally {
      run.disabled = false;
    }
  });
  return panel;
}

/** The card of one /api/edit answer: a viewer with the edited range marked, downloads, an editor panel. */
function editCard(r, registry) {
  const card = document.createElement("article");
  card.className = "edit-result";
  card.dataset.motion = r.motion;
  const [a, b] = r.range;
  const title = document.createElement("h4");
  title.textContent = `Edit: "${r.text}" · frames ${a}-${b} (${(a / r.fps).toFixed(2)}-${(b / r.fps).toFixed(2)} s)` +
    (r.parts.length ? ` · ${r.parts.join(", ")}` : "") + ` · ${r.frames} frames`;
  card.appendChild(title);
  const box = document.createElement("div");
  card.appendChild(box);
  const viewer = new MotionViewer(box, state.skeleton);
  registry.push(viewer);
  viewer.setMotions([{ joints: r.joints, label: `edited: ${r.text} (frames ${a}-${b})` }]);
  viewer.setRange(a, b, "edited");
  const downloads = document.createElement("div");
  downloads.className = "downloads";
  downloads.append(link(`/api/files/${r.files.bvh}`, "BVH", "edit_0.bvh"),
                   link(`/api/files/${r.files.joints}`, "joints .npy", "edit_0.joints.npy"),
                   link(`/api/files/${r.files.features}`, "features .npy", "edit_0.features.npy"),
                   link(`/api/files/${r.files.video}`, "video", null),
                   link(`/api/files/${r.files.result}`, "result.json", "result.json"));
  card.appendChild(downloads);
  card.appendChild(editorPanel({ motion: r.motion, frames: r.frames, label: r.text }, viewer, registry));
  return card;
}

async function generate(event) {
  event.preventDefault();
  const button = $("generate"), status = $("generate-status"), error = $("generate-error");
  showError(error, null);
  const body = { prompt: $("prompt").value, seconds: numberOrNull($("seconds")), seed: numberOrNull($("seed")),
                 num_samples: numberOrNull($("num-samples")) ?? 1, cond_scale: numberOrNull($("cond-scale")) };
  const t0 = performance.now();
  window.studioTimings = { start: t0 };
  button.disabled = true;
  status.textContent = "generating…";
  try {
    const result = await api("/api/generate", body);
    window.studioTimings.response = performance.now() - t0;
    clearResults();
    if (!state.skeleton) await pollHealth();
    await refreshFeatures();
    status.textContent = `Generated ${result.samples.length} motion(s) in ${result.seconds_taken.toFixed(2)} s ` +
      `(seed ${result.seed}).`;
    $("seed").placeholder = `random (last: ${result.seed})`;
    const files = $("result-files");
    files.append(link(`/api/files/${result.files.result}`, "result.json", "result.json"));
    files.hidden = false;
    if (!webglAvailable()) {
      showError(error, "this browser has no WebGL: the 3D viewer cannot draw (the downloads still work)");
    }
    for (const sample of result.samples) $("results").appendChild(sampleCard(result, sample, t0));
    document.body.dataset.generated = String((Number(document.body.dataset.generated) || 0) + 1);
  } catch (e) {
    status.textContent = "";
    showError(error, e.message);
  } finally {
    button.disabled = false;
  }
}

// -- retrieval tab -----------------------------------------------------------------------------------------
async function retrieve(event) {
  event.preventDefault();
  const error = $("retrieve-error"), list = $("retrieve-hits");
  showError(error, null);
  $("retrieve").disabled = true;
  try {
    const data = await api("/api/retrieve", { text: $("retrieve-text").value, k: numberOrNull($("retrieve-k")) ?? 5 });
    list.replaceChildren();
    state.retrieveShown = [];
    if (state.retrieveViewer) state.retrieveViewer.setMotions([]);
    for (const hit of data.hits) {
      const li = document.createElement("li");
      li.dataset.id = hit.id;
      const caption = document.createElement("span");
      caption.className = "caption";
      caption.textContent = hit.caption;
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = `score ${hit.score.toFixed(3)} · ${hit.motion_id} · ${((hit.end - hit.start) / 20).toFixed(1)} s`;
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "view";
      button.addEventListener("click", () => toggleHit(hit, li).catch((e) => showError(error, e.message)));
      li.append(caption, score, button);
      list.appendChild(li);
    }
    if (data.hits.length) await toggleHit(data.hits[0], list.firstChild);
  } catch (e) {
    showError(error, e.message);
  } finally {
    $("retrieve").disabled = false;
  }
}

async function toggleHit(hit, li) {
  if (!state.skeleton) await pollHealth();
  if (!state.retrieveViewer) state.retrieveViewer = new MotionViewer($("retrieve-viewer"), state.skeleton);
  const at = state.retrieveShown.findIndex((m) => m.id === hit.id);
  if (at >= 0) {
    state.retrieveShown.splice(at, 1);
    li.classList.remove("shown");
  } else {
    const motion = await api(`/api/entries/${encodeURIComponent(hit.id)}`);
    state.retrieveShown.push({ id: hit.id, joints: motion.joints, label: motion.caption });
    if (state.retrieveShown.length > 4) {
      const old = state.retrieveShown.shift();
      const oldLi = document.querySelector(`#retrieve-hits li[data-id="${CSS.escape(old.id)}"]`);
      if (oldLi) oldLi.classList.remove("shown");
    }
    li.classList.add("shown");
  }
  state.retrieveViewer.setMotions(state.retrieveShown);
}

// -- timeline tab (ReMoMaskPipeline.compose) ----------------------------------------------------------------
function addSegment(text = "", seconds = "3") {
  const li = document.createElement("li");
  const t = document.createElement("input");
  t.type = "text"; t.className = "text"; t.maxLength = 500; t.value = text; t.placeholder = "a person walks forward";
  t.setAttribute("aria-label", "segment text");
  const s = document.createElement("input");
  s.type = "number"; s.className = "seconds"; s.min = "0.2"; s.step = "0.2"; s.value = seconds;
  s.setAttribute("aria-label", "segment seconds");
  const x = document.createElement("button");
  x.type = "button"; x.textContent = "remove";
  x.addEventListener("click", () => li.remove());
  li.append(t, s, document.createTextNode("s"), x);
  $("timeline-segments").appendChild(li);
}

async function compose(event) {
  event.preventDefault();
  const error = $("timeline-error"), status = $("timeline-status");
  showError(error, null);
  const segments = [...document.querySelectorAll("#timeline-segments li")].map((li) => ({
    text: li.querySelector("input.text").value, seconds: numberOrNull(li.querySelector("input.seconds")) }));
  $("compose").disabled = true;
  status.textContent = "composing…";
  try {
    const r = await api("/api/compose", { segments, seed: numberOrNull($("timeline-seed")),
                                          cond_scale: numberOrNull($("timeline-cond-scale")) });
    if (!state.skeleton) await pollHealth();
    await refreshFeatures();
    if (!state.timelineViewer) state.timelineViewer = new MotionViewer($("timeline-viewer"), state.skeleton);
    state.timelineViewer.setMotions([{ joints: r.joints, label: `timeline: ${r.frames} frames (${r.seconds.toFixed(1)} s)` }]);
    state.timelineViewer.setRange(null, 0, "selection");
    for (const v of state.timelineEdits) v.dispose();
    state.timelineEdits = [];
    $("timeline-editor").replaceChildren();
    if (state.features.edit && r.motion) {
      $("timeline-editor").appendChild(editorPanel({ motion: r.motion, frames: r.frames, label: "timeline" },
                                                   state.timelineViewer, state.timelineEdits));
    }
    status.textContent = `Composed ${r.seconds.toFixed(1)} s in ${r.seconds_taken.toFixed(2)} s (seed ${r.seed}).`;
    const files = $("timeline-files");
    files.replaceChildren(link(`/api/files/${r.files.bvh}`, "BVH", "timeline.bvh"),
                          link(`/api/files/${r.files.joints}`, "joints .npy", "timeline.joints.npy"),
                          link(`/api/files/${r.files.features}`, "features .npy", "timeline.features.npy"),
                          link(`/api/files/${r.files.video}`, "video", null),
                          link(`/api/files/${r.files.result}`, "result.json", "result.json"));
    files.hidden = false;
    $("timeline-spans").replaceChildren(...r.segments.map((seg) => {
      const li = document.createElement("li");
      const c = document.createElement("span");
      c.className = "caption";
      c.textContent = seg.text;
      const f = document.createElement("span");
      f.className = "score";
      f.textContent = `frames ${seg.start}-${seg.end} (${((seg.end - seg.start) / 20).toFixed(1)} s)`;
      li.append(c, f);
      return li;
    }));
  } catch (e) {
    status.textContent = "";
    showError(error, e.message);
  } finally {
    $("compose").disabled = false;
  }
}

// -- tabs --------------------------------------------------------------------------------------------------
function selectTab(name) {
  for (const t of ["generate", "retrieve", "timeline"]) {
    $(`tab-${t}`).hidden = t !== name;
    $(`tab-${t}-button`).setAttribute("aria-selected", String(t === name));
  }
}

$("tab-generate-button").addEventListener("click", () => selectTab("generate"));
$("tab-retrieve-button").addEventListener("click", () => selectTab("retrieve"));
$("generate-form").addEventListener("submit", generate);
$("retrieve-form").addEventListener("submit", retrieve);
$("tab-timeline-button").addEventListener("click", () => selectTab("timeline"));
$("timeline-form").addEventListener("submit", compose);
$("timeline-add").addEventListener("click", () => addSegment());
addSegment("a person walks forward", "4");
addSegment("a person waves with the right hand", "3");
$("prompt").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) $("generate-form").requestSubmit();
});
pollHealth();
