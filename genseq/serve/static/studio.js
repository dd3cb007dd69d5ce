// genseq studio: a page over the studio's JSON and event-stream endpoints. No framework, no build step.
"use strict";

const $ = (selector) => document.querySelector(selector);
// temperatureChosen: the user moved the slider or typed a temperature; until then none is sent, so each model
// samples at its own (which the slider shows)
// trainingBusy: why the studio refuses a generation now (a training runs), or null
// current: the result shown (as GET /api/results/{id} gives it); compare: {original, refill} while a refill is
// shown beside its original; units: what a span to draw again counts, by tokenizer (the studio's INFILL_UNITS)
const state = { models: [], model: null, job: null, upload: null, busy: false, temperatureChosen: false,
                trainingBusy: null, current: null, compare: null, units: {} };
// the tokenizers of MIDI models (their primer is a .mid file)
const MIDI_KINDS = ["midi", "beat", "voices"];
// the tokenizers whose samples come with a score, as the studio's SCORED_KINDS
const SCORED_KINDS = ["abc", "beat", "voices"];
// spans chosen on a piano roll (the studio's ROLL_UNITS): beats of a chorale, seconds of other MIDI
const ROLL_UNITS = ["beats", "seconds"];
// how each unit's span is written, and its field's label, example and hint
const SPAN_FORMAT = /^\s*\d+\s*(-\s*\d+\s*)?$/;
const SECONDS_FORMAT = /^\s*\d+(\.\d+)?\s*-\s*\d+(\.\d+)?\s*$/;
const SPAN_FIELDS = {
  bars: ["Bars", "5-8", "Click a bar on the score, shift-click another to extend, or type the bars "
                        + "(5-8; a pickup is bar 0 and stays)."],
  chars: ["Characters", "120-180", "Select the characters in the text, or type them (120-180, counted from 1)."],
  beats: ["Beats", "9-16", "Drag across the piano roll (whole beats), or type the beats (9-16, counted from 1 at "
                           + "the start). Voices: all, or some (alto,tenor); the others are kept."],
  seconds: ["Seconds", "12.5-20", "Drag across the piano roll, or type the seconds (12.5-20)."],
};
// a span's shading on a piano roll: the one chosen, the one drawn again
const BANDS = { chosen: ["rgba(47, 111, 223, 0.16)", "#2f6fdf"], refilled: ["rgba(31, 157, 107, 0.2)", "#1f9d6b"] };
const COLOURS = ["#2f6fdf", "#d9822b", "#1f9d6b", "#b04fc8", "#c23b3b", "#3aa6b9", "#8a7a1f", "#5a5fd6"];

function showError(message) {
  const box = $("#error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function request(url, options = {}) {
  const response = await fetch(url, options);
  const data = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
  if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
  return data;
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

// models ------------------------------------------------------------------------------------------------------

async function loadModels() {
  const data = await request("/api/models");
  state.models = data.models;
  state.units = data.infill;
  $("#server-status").textContent = `audio: ${data.audio} · ${data.models.length} models`;
  const precision = document.querySelector("select[name=precision]");
  if (precision.options.length !== data.precisions.length) {
    precision.replaceChildren(...data.precisions.map((name) => element("option", { text: name })));
  }
  for (const [name, most] of Object.entries(data.limits)) document.querySelector(`[name=${name}]`).max = most;
  const list = $("#models");
  list.replaceChildren();
  for (const model of data.models) {
    const loss = model.best_val_loss == null ? "" : ` · val loss ${model.best_val_loss.toFixed(3)}`;
    const item = element("li", { "data-model": model.id, tabindex: "0", onclick: () => chooseModel(model.id),
                                 onkeydown: (e) => { if (e.key === "Enter") chooseModel(model.id); } },
      element("div", {}, element("span", { class: "name", text: model.name }),
              element("span", { class: "badge", text: model.kind || "?" }),
              element("span", { class: "badge", text: model.source })),
      element("div", { class: "facts", text: `${model.corpus || "?"} · ${model.size}${loss}` }));
    list.append(item);
  }
  const keep = state.model && data.models.find((m) => m.id === state.model.id);
  chooseModel(keep ? keep.id : (data.models[0] || {}).id);
  showTrainingBusy(data.training);
  fillBases();
}

function showTrainingBusy(reason) {
  // the studio refuses a generation while a training runs; the page says so before the user asks
  state.trainingBusy = reason || null;
  $("#busy-note").textContent = reason ? `Generate is off: ${reason}` : "";
  $("#busy-note").hidden = !reason;
  $("#generate").disabled = state.busy || Boolean(reason);
  $("#refill-go").disabled = state.busy || Boolean(reason);
}

function chooseModel(id) {
  state.model = state.models.find((m) => m.id === id) || null;
  for (const item of document.querySelectorAll("#models li")) item.classList.toggle("chosen", item.dataset.model === id);
  const kind = state.model ? state.model.kind : null;
  if (state.model && !state.temperatureChosen) showTemperature(state.model.temperature);
  $("#music").hidden = !kind || kind === "char";
  for (const label of document.querySelectorAll(".abc-only")) label.hidden = kind !== "abc";
  for (const label of document.querySelectorAll(".voices-only")) label.hidden = kind !== "voices";
  $("#primer-hint").textContent = kind === "abc" ? "ABC the tunes start with, e.g. X:1 M:6/8 K:G"
    : kind === "voices" ? "load a four-voice .mid to continue, or a melody (.mid of one track, .abc) to harmonise"
    : MIDI_KINDS.includes(kind) ? "load a .mid file to continue" : "text the samples continue";
  $("#primer").disabled = MIDI_KINDS.includes(kind);
  clearUpload();
}

function showTemperature(value) {
  $("#temperature").value = value;
  $("#temperature-range").value = value;
}

// primer files ------------------------------------------------------------------------------------------------

function clearUpload() {
  state.upload = null;
  $("#upload-chip").hidden = true;
  $("#primer-file").value = "";
}

async function uploadPrimer(file) {
  showError("");
  try {
    const query = new URLSearchParams({ model: state.model.id, name: file.name });
    // raw bytes, as the studio's guard asks of an upload (a type no other site's page may send unasked)
    const data = await request(`/api/primer?${query}`,
      { method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: file });
    if (data.kind === "text") {
      $("#primer").value = data.text;
      clearUpload();
    } else {
      state.upload = data.upload;
      $("#upload-name").textContent = data.kind === "melody" ? `melody to harmonise: ${data.name}` : `primer: ${data.name}`;
      $("#upload-chip").hidden = false;
    }
  } catch (err) {
    clearUpload();
    showError(err.message);
  }
}

// generation --------------------------------------------------------------------------------------------------

function settings() {
  const form = new FormData($("#settings"));
  const body = { model: state.model && state.model.id, upload: state.upload };
  for (const [key, value] of form.entries()) if (typeof value === "string" && value.trim() !== "") body[key] = value.trim();
  if (form.get("primer")) body.primer = form.get("primer");  // kept as typed: spaces and line breaks matter
  if ($("#new-seed").checked) delete body.seed;
  if (!state.temperatureChosen) delete body.temperature;
  body.stop_at_end = $("#stop-at-end").checked;
  if (state.model && state.model.kind === "voices") body.voice_leading = $("#voice-leading").checked;
  if (state.model && state.model.kind === "abc") body.full_bars = $("#full-bars").checked;
  if ($("#music").hidden) delete body.transpose;
  if (!state.model || state.model.kind !== "abc") for (const key of ["meter", "key", "unit_length"]) delete body[key];
  return body;
}

function setBusy(busy) {
  state.busy = busy;
  $("#generate").disabled = busy || Boolean(state.trainingBusy);
  $("#refill-go").disabled = busy || Boolean(state.trainingBusy);
  $("#stop").disabled = !busy;
}

function liveText(count) {
  const box = $("#live-text");
  box.replaceChildren(...Array.from({ length: count }, () => element("pre", { class: "stream" })));
  return [...box.children];
}

async function generate(event) {
  event.preventDefault();
  if (state.busy || !state.model) return;
  await runJob("/api/generate", settings(), showSaved);
}

async function runJob(url, body, shown) {
  // a generation or a refill: streamed into the live panel as it waits and is written, then `shown(result id)`
  showError("");
  setBusy(true);
  let length = Number(body.length || 600);
  let panes = [];
  let written = 0;
  $("#live").hidden = false;
  $("#empty").hidden = true;
  $("#live-bar").style.width = "0";
  $("#live-status").textContent = "starting…";
  try {
    const response = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" },
                                        body: JSON.stringify(body) });
    if (!response.ok) {
      const data = await response.json().catch(() => ({}));
      throw new Error(data.error || `${response.status} ${response.statusText}`);
    }
    for await (const [name, data] of events(response)) {
      if (name === "job") {
        state.job = data.id;
        length = data.settings.length;  // a melody to harmonise sets its own
        panes = liveText(data.settings.num_samples);
        for (const pane of panes) pane.textContent = data.primer;
      } else if (name === "queued") {
        $("#live-status").textContent = data.position > 1 ? `waiting: number ${data.position} in line` : "next in line";
      } else if (name === "started") {
        $("#live-status").textContent = "writing…";
      } else if (name === "tokens") {
        data.text.forEach((text, row) => { if (text) { panes[row].textContent += text; panes[row].scrollTop = 1e9; } });
        written = data.step;
        $("#live-bar").style.width = `${Math.min(100, (100 * written) / length)}%`;
        $("#live-status").textContent = `${written.toLocaleString()} of at most ${length.toLocaleString()} tokens`;
      } else if (name === "rendering") {
        $("#stop").disabled = true;
        $("#live-status").textContent = `rendering audio${SCORED_KINDS.includes(state.model.kind) ? " and score" : ""}…`;
      } else if (name === "result") {
        $("#live").hidden = true;
        await shown(data.id);
        await loadHistory();
      } else if (name === "error") {
        $("#live-status").textContent = "failed";
        showError(data.error);
      }
    }
  } catch (err) {
    showError(err.message);
  } finally {
    state.job = null;
    setBusy(false);
  }
}

async function* events(response) {
  // Server-Sent Events over a POST response: "event: NAME\ndata: JSON\n\n" blocks.
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const name = (block.match(/^event: (.*)$/m) || [])[1];
      const data = (block.match(/^data: (.*)$/m) || [])[1];
      if (name) yield [name, JSON.parse(data || "{}")];
    }
  }
}

async function stop() {
  if (!state.job) return;
  $("#stop").disabled = true;
  $("#live-status").textContent = "stopping: keeping what was written…";
  try {
    await request(`/api/jobs/${state.job}/stop`,
      { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
  } catch (err) {
    showError(err.message);
  }
}

// results -----------------------------------------------------------------------------------------------------

function describe(result) {
  const s = result.settings;
  const parts = [`${result.model}`, `seed ${s.seed}`, `temperature ${s.temperature}`];
  if (s.top_k) parts.push(`top-k ${s.top_k}`);
  if (s.top_p) parts.push(`top-p ${s.top_p}`);
  for (const key of ["meter", "key", "unit_length"]) if (s[key]) parts.push(`${key.replace("_", " ")} ${s[key]}`);
  if (s.melody) parts.push(`harmonising ${s.melody}`);
  if (s.transpose) parts.push(`transposed ${s.transpose > 0 ? "+" : ""}${s.transpose}`);
  if (s.voice_leading === false) parts.push("free voices");
  if (s.full_bars === false) parts.push("free bars");
  if (result.infill) parts.push(`${spanName(result.infill)} drawn again (best of ${s.candidates})`);
  parts.push(`${result.steps.toLocaleString()} tokens in ${result.seconds} s`);
  if (result.stopped) parts.push("stopped early");
  return parts.join(" · ");
}

function spanName(refill) {
  // "bars 5-8", "beats 9-16 (alto,tenor)", "seconds 12.5-20"
  return `${refill.unit} ${refill.first}-${refill.last}${refill.voices ? ` (${refill.voices})` : ""}`;
}

function showResult(result) {
  // the current piece: its samples, the versions of it, and the form that draws a span of it again
  state.current = result;
  state.compare = null;
  $("#compare").hidden = true;
  $("#result").hidden = false;
  $("#empty").hidden = true;
  $("#result-title").textContent = `Result ${result.created}`;
  $("#result-meta").textContent = describe(result);
  const box = $("#samples");
  box.replaceChildren();
  result.samples.forEach((sample, index) => {
    box.append(sampleCard(result, sample, index + 1, refilledSpan(result, sample), true));
  });
  for (const row of document.querySelectorAll("#history tbody tr")) row.classList.toggle("current", row.dataset.result === result.id);
  showVersions(result);
  showRefillForm(result);
}

function showVersions(result) {
  // original -> refill 1 -> refill 2 ...: every version of this piece, oldest first
  const versions = result.versions || [result.id];
  const at = versions.indexOf(result.id);
  $("#versions").hidden = versions.length < 2;
  $("#version-label").textContent = `version ${at + 1} of ${versions.length}`;
  $("#version-previous").disabled = at <= 0;
  $("#version-next").disabled = at >= versions.length - 1;
}

function refilledSpan(result, sample) {
  // where a refill's new span lies in one of its samples (null for a result that is no refill): bars first..last,
  // characters start..end, seconds from..to on the piano roll
  const refill = result.infill;
  if (!refill) return null;
  const span = { first: refill.first, last: refill.last, kind: "refilled" };
  if (refill.seconds) return { ...span, from: refill.seconds[0], to: refill.seconds[1] };
  return sample.text ? { ...span, start: refill.start, end: sample.text.length - refill.after } : null;
}

function stepVersion(step) {
  const versions = state.current.versions;
  const next = versions[versions.indexOf(state.current.id) + step];
  if (next) showSaved(next);
}

function sampleCard(result, sample, number, marked = null, pickable = false) {
  // one sample: downloads, audio, piano roll, score and text; `marked` highlights a span: bars first..last on the
  // score, characters start..end of the text, seconds from..to on the piano roll, as `kind` ("chosen" or
  // "refilled"); on a `pickable` card (the result shown, not a comparison) a span is chosen on the piano roll
  const url = (kind) => `/api/results/${result.id}/${number}/${kind}`;
  const card = element("div", { class: "sample", "data-sample": String(number) });
  const links = element("span", { class: "downloads" });
  const labels = { mid: "MIDI", abc: "ABC", musicxml: "MusicXML", wav: "WAV", txt: "text" };
  for (const [kind, label] of Object.entries(labels)) {
    if (sample.files[kind]) links.append(element("a", { href: url(kind), download: "", "data-kind": kind, text: label }));
  }
  card.append(element("h3", {}, element("span", { text: `Sample ${number}` }), links));
  if (sample.note) card.append(element("p", { class: "note", text: sample.note }));
  let audio = null;
  if (sample.files.wav) {
    audio = element("audio", { controls: "", preload: "metadata", src: `${url("wav")}?inline=1` });
    card.append(audio);
  }
  const unit = state.units[result.kind];
  if (sample.notes && sample.notes.length) {
    const onRoll = pickable && ROLL_UNITS.includes(unit);
    const canvas = element("canvas", { class: "roll", "aria-label": onRoll
      ? `piano roll (drag across it to choose the ${unit} to draw again, or type them in the ${unit} field)` : "piano roll" });
    canvas.bands = {};
    if (marked && marked.from != null) canvas.bands[marked.kind] = [marked.from, marked.to];
    card.append(canvas);
    requestAnimationFrame(() => {
      pianoRoll(canvas, sample.notes, audio, sample.beats);
      if (onRoll) {
        canvas.classList.add("pickable");
        pickOnRoll(canvas, number, unit, sample.beats || [0]);
      }
    });
  }
  if (sample.files.svg) {
    const score = element("div", { class: "score", role: "img",
                                   "aria-label": unit === "bars" ? "score (type bars to choose them)" : "score" });
    card.append(score);
    engrave(score, `${url("svg")}?inline=1`, sample.bars || [], number, marked);
  }
  if (sample.text) {
    const text = element("pre", { class: "text" });
    markText(text, sample.text, marked);
    if (result.kind === "char") text.addEventListener("mouseup", () => pickChars(text, number));
    card.append(text);
  }
  return card;
}

async function engrave(box, url, bars, number, marked) {
  // the score inline, so that its bars can be chosen: verovio's SVG, with anything active removed
  const response = await fetch(url);
  if (!response.ok) return;
  const parsed = new DOMParser().parseFromString(await response.text(), "image/svg+xml");
  const svg = parsed.documentElement;
  if (svg.nodeName !== "svg") return;
  for (const node of svg.querySelectorAll("script, foreignObject, iframe, object, embed, a")) node.remove();
  for (const node of [svg, ...svg.querySelectorAll("*")]) {
    for (const { name, value } of [...node.attributes]) {
      if (name.toLowerCase().startsWith("on") || (name.toLowerCase().endsWith("href") && !value.startsWith("#"))) {
        node.removeAttribute(name);
      }
    }
  }
  svg.setAttribute("viewBox", `0 0 ${parseFloat(svg.getAttribute("width"))} ${parseFloat(svg.getAttribute("height"))}`);
  svg.removeAttribute("width");
  svg.removeAttribute("height");
  box.replaceChildren(document.importNode(svg, true));
  const measures = [...box.querySelectorAll("g.measure")];
  if (measures.length !== bars.length) {  // the engraving split or joined a bar: choose bars by number instead
    box.dataset.bars = "unmapped";
    return;
  }
  measures.forEach((measure, index) => {
    if (bars[index] == null) return;  // a pickup: not counted, not chosen
    const found = measure.getBBox();
    const frame = document.createElementNS(measure.namespaceURI, "rect");
    for (const [key, value] of Object.entries({ x: found.x, y: found.y, width: found.width, height: found.height })) {
      frame.setAttribute(key, value);
    }
    frame.setAttribute("class", "bar-frame");
    frame.setAttribute("style", "stroke: none");  // verovio's own style outlines every rect
    measure.prepend(frame);
    measure.classList.add("bar");
    measure.dataset.bar = bars[index];
    measure.addEventListener("click", (event) => pickBars(number, bars[index], event.shiftKey));
  });
  box.dataset.bars = "mapped";
  if (marked) markBars(box, marked.first, marked.last, marked.kind);
}

function markBars(box, first, last, kind) {
  for (const bar of box.querySelectorAll("g.bar")) {
    const number = Number(bar.dataset.bar);
    bar.classList.toggle(kind, first != null && first <= number && number <= last);
  }
}

function markText(pre, text, marked) {
  // the text, with a span marked: characters start..end of it
  if (!marked || marked.start == null) { pre.textContent = text; return; }
  pre.replaceChildren(text.slice(0, marked.start),
                      element("mark", { class: marked.kind, text: text.slice(marked.start, marked.end) }),
                      text.slice(marked.end));
}

// drawing a span again ----------------------------------------------------------------------------------------

function showRefillForm(result) {
  const unit = state.units[result.kind];
  const onRoll = ROLL_UNITS.includes(unit);
  $("#refill").hidden = !unit || !result.samples.some((s) => (onRoll ? s.files.mid : s.text));
  if (!unit) return;
  const several = result.samples.length > 1;
  $("#refill-sample").hidden = $("#refill-sample-label").hidden = !several;
  $("#refill-sample").max = result.samples.length;
  $("#refill-sample").value = "1";
  $("#refill-span").value = "";
  $("#refill-problem").textContent = "";
  [$("#refill-unit").textContent, $("#refill-span").placeholder, $("#refill-hint").textContent] = SPAN_FIELDS[unit];
  $("#refill-span").inputMode = unit === "seconds" ? "decimal" : "numeric";
  $("#refill-voices").hidden = $("#refill-voices-label").hidden = unit !== "beats";
  $("#refill-voices").value = "";
}

function pickBars(number, bar, extend) {
  // a click chooses one bar; a shift-click stretches the span from the bar it starts at to this one
  const [first] = spanNumbers($("#refill-span").value);
  const same = Number($("#refill-sample").value) === number;
  const span = extend && same && first != null ? [Math.min(first, bar), Math.max(first, bar)] : [bar, bar];
  $("#refill-sample").value = String(number);
  $("#refill-span").value = span[0] === span[1] ? `${span[0]}` : `${span[0]}-${span[1]}`;
  showChosen();
}

function pickChars(pre, number) {
  // the characters selected in a text, counted from 1 as the library counts them
  const selection = window.getSelection();
  if (!selection.rangeCount || selection.isCollapsed || !pre.contains(selection.anchorNode)) return;
  const range = selection.getRangeAt(0);
  const before = document.createRange();
  before.setStart(pre, 0);
  before.setEnd(range.startContainer, range.startOffset);
  const start = before.toString().length;
  $("#refill-sample").value = String(number);
  $("#refill-span").value = `${start + 1}-${start + range.toString().length}`;
  showChosen();
}

function pickOnRoll(canvas, number, unit, beats) {
  // a drag across a piano roll chooses the span it covers: whole beats of a chorale (a click: one beat; a
  // shift-click stretches the span to the beat clicked), tenths of seconds of other MIDI
  let from = null;
  const at = (event) => canvas.roll.seconds(event.clientX - canvas.getBoundingClientRect().left);
  const choose = (a, b, extend) => {
    const [low, high] = [Math.min(a, b), Math.max(a, b)];
    let span;
    if (unit === "beats") {
      span = [beatAt(beats, low), beatAt(beats, high)];
      const [first] = spanNumbers($("#refill-span").value);
      if (extend && first != null && Number($("#refill-sample").value) === number) {
        span = [Math.min(first, span[0]), Math.max(first, span[1])];
      }
    } else {
      span = [Math.floor(low * 10) / 10, Math.ceil(high * 10) / 10];
      if (span[1] - span[0] < 0.1) return;  // a click: no span of time
    }
    $("#refill-sample").value = String(number);
    $("#refill-span").value = span[0] === span[1] && unit === "beats" ? `${span[0]}` : `${span[0]}-${span[1]}`;
    showChosen();
  };
  canvas.addEventListener("pointerdown", (event) => {
    from = at(event);
    canvas.setPointerCapture(event.pointerId);
    choose(from, from, event.shiftKey);
  });
  canvas.addEventListener("pointermove", (event) => { if (from != null && !event.shiftKey) choose(from, at(event), false); });
  canvas.addEventListener("pointerup", () => { from = null; });
}

function beatTime(beats, beat) {
  // when beat `beat` (from 0) starts: the studio's beat times, and past them the last beat's length again
  const known = beats.length - 1;
  if (beat <= known) return beats[beat];
  const length = known > 0 ? beats[known] - beats[known - 1] : 0.5;
  return beats[known] + (beat - known) * length;
}

function beatAt(beats, seconds) {
  // the beat (from 1) sounding at `seconds`
  let beat = 1;
  while (beatTime(beats, beat) <= seconds && beat < 100000) beat += 1;
  return beat;
}

function spanSeconds(sample, unit, first, last) {
  // [from, to] of a span typed or picked, in seconds, where a piano roll shades it
  const beats = sample.beats || [0];
  return unit === "beats" ? [beatTime(beats, first - 1), beatTime(beats, last)] : [first, last];
}

function spanNumbers(text, unit = null) {
  // [first, last] of a span as typed, or [] where it is not one (seconds: a start and an end, with decimals)
  if (!(unit === "seconds" ? SECONDS_FORMAT : SPAN_FORMAT).test(text)) return [];
  const [first, last] = text.split("-").map((part) => Number(part.trim()));
  return [first, last ?? first];
}

function showChosen() {
  // the span typed or picked, marked on the page (the studio checks it against the piece when asked)
  const typed = $("#refill-span").value;
  const unit = state.units[state.current.kind];
  const [first, last] = spanNumbers(typed, unit);
  $("#refill-problem").textContent = typed.trim() && first == null ? wrongSpan(unit) : "";
  const number = Number($("#refill-sample").value);
  for (const card of document.querySelectorAll("#samples .sample")) {
    const here = Number(card.dataset.sample) === number && first != null;
    const roll = card.querySelector("canvas.roll");
    if (roll && ROLL_UNITS.includes(unit)) {
      const sample = state.current.samples[Number(card.dataset.sample) - 1];
      roll.bands.chosen = here && last >= first ? spanSeconds(sample, unit, first, last) : null;
      if (roll.roll) roll.roll.redraw();
    }
    const score = card.querySelector(".score");
    if (score) markBars(score, here ? first : null, last, "chosen");
    const pre = card.querySelector("pre.text");
    if (pre && state.current.kind === "char") {
      const text = state.current.samples[Number(card.dataset.sample) - 1].text;
      markText(pre, text, here ? { start: first - 1, end: last, kind: "chosen" } : null);
    }
  }
}

function wrongSpan(unit) {
  return unit === "seconds" ? "write the span as 12.5-20 (its start and end)" : "write the span as 5-8, or one number";
}

async function refill(event) {
  event.preventDefault();
  if (state.busy || !state.current) return;
  const span = $("#refill-span").value;
  const unit = state.units[state.current.kind];
  if (spanNumbers(span, unit)[0] == null) {
    $("#refill-problem").textContent = span.trim() ? wrongSpan(unit) : `choose the ${unit} to draw again first`;
    $("#refill-span").focus();
    return;
  }
  const chosen = settings();
  const body = { result: state.current.id, sample: $("#refill-sample").value, span,
                 candidates: $("#refill-candidates").value };
  if (unit === "beats" && $("#refill-voices").value.trim()) body.voices = $("#refill-voices").value.trim();
  for (const key of ["temperature", "top_k", "top_p", "seed", "precision"]) if (key in chosen) body[key] = chosen[key];
  const original = state.current;
  await runJob("/api/infill", body, (id) => showComparison(original, id));
}

async function showComparison(original, id) {
  // the refill beside its original: both heard and seen, the span marked in each; keep either
  const made = await request(`/api/results/${id}`);
  const refilled = made.infill;
  const sample = original.samples[refilled.sample - 1];
  state.compare = { original, refill: made };
  $("#result").hidden = true;
  $("#compare").hidden = false;
  $("#compare-meta").textContent = `${spanName(refilled)} drawn again`;
  const seconds = refilled.seconds || [null, null];
  $("#compare-original").replaceChildren(sampleCard(original, sample, refilled.sample,
    { first: refilled.first, last: refilled.last, start: refilled.start, end: refilled.end, from: seconds[0],
      to: seconds[1], kind: "chosen" }));
  $("#compare-new").replaceChildren(
    ...made.samples.map((version, index) => sampleCard(made, version, index + 1, refilledSpan(made, version))));
  $("#keep-new").focus();
}

function keep(which) {
  // the kept version becomes the current piece (read again: its versions now include the refill); both stay in
  // the history
  const { original, refill: made } = state.compare;
  return showSaved(which === "new" ? made.id : original.id);
}

function pianoRoll(canvas, notes, audio, beats = null) {
  // the notes ([pitch, start, end, track, drum], seconds) over time, a chorale's beats to its last, and the spans in
  // `canvas.bands` ({kind: [from, to]} in seconds) shaded; `canvas.roll` maps a point across it to seconds
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const ctx = canvas.getContext("2d");
  const end = Math.max(...notes.map((n) => n[2]), ...(beats || []), 0.1);
  const low = Math.min(...notes.map((n) => n[0])) - 2, high = Math.max(...notes.map((n) => n[0])) + 2;
  const left = 34, x = (t) => left + ((width - left - 8) * t) / end, row = (height - 22) / (high - low + 1);
  const y = (pitch) => 4 + (high - pitch) * row;
  const names = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];
  function draw(now) {
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "10px system-ui, sans-serif";
    for (let pitch = low; pitch <= high; pitch++) {
      if (pitch % 12 !== 0) continue;
      ctx.fillStyle = "#eef1f6";
      ctx.fillRect(left, y(pitch), width - left, row);
      ctx.fillStyle = "#6b7385";
      ctx.fillText(`${names[pitch % 12]}${Math.floor(pitch / 12) - 1}`, 4, y(pitch) + row);
    }
    ctx.fillStyle = "#6b7385";
    const step = end > 60 ? 10 : end > 20 ? 5 : 1;
    for (let t = 0; t <= end; t += step) ctx.fillText(`${t}s`, x(t) - 4, height - 5);
    ctx.fillStyle = "#e6e9f0";
    for (const beat of beats || []) ctx.fillRect(x(beat), 0, 1, height - 16);
    for (const [kind, band] of Object.entries(canvas.bands || {})) {
      if (!band) continue;
      const [from, to] = [x(Math.min(band[0], end)), x(Math.min(band[1], end))];
      ctx.fillStyle = BANDS[kind][0];
      ctx.fillRect(from, 0, Math.max(to - from, 1), height - 16);
      ctx.fillStyle = BANDS[kind][1];
      ctx.fillRect(from, 0, 1, height - 16);
      ctx.fillRect(to - 1, 0, 1, height - 16);
    }
    for (const [pitch, start, stop, track, drum] of notes) {
      ctx.fillStyle = COLOURS[track % COLOURS.length];
      ctx.globalAlpha = now != null && start <= now && now < stop ? 1 : 0.78;
      if (drum) ctx.fillRect(x(start) - 1.5, y(pitch), 3, Math.max(row, 2));
      else ctx.fillRect(x(start), y(pitch), Math.max(x(stop) - x(start) - 0.5, 1.5), Math.max(row - 0.5, 2));
    }
    ctx.globalAlpha = 1;
    if (now != null && now > 0) {
      ctx.strokeStyle = "#c23b3b";
      ctx.beginPath(); ctx.moveTo(x(now), 0); ctx.lineTo(x(now), height - 16); ctx.stroke();
    }
  }
  const playing = () => (audio && audio.currentTime > 0 ? audio.currentTime : null);
  canvas.roll = { seconds: (across) => Math.min(end, Math.max(0, ((across - left) * end) / (width - left - 8))),
                  x, redraw: () => draw(playing()) };
  draw(null);
  if (!audio) return;
  const follow = () => { draw(audio.currentTime); if (!audio.paused) requestAnimationFrame(follow); };
  audio.addEventListener("play", follow);
  audio.addEventListener("seeked", () => draw(audio.currentTime));
}

// history -----------------------------------------------------------------------------------------------------

async function loadHistory() {
  const data = await request("/api/history");
  const body = $("#history tbody");
  body.replaceChildren();
  $("#history-count").textContent = data.results.length ? `${data.results.length} kept on disk` : "nothing yet";
  for (const result of data.results) {
    const s = result.settings;
    const refilled = result.infill ? ` · ${spanName(result.infill)} again` : "";
    const cells = [result.created, result.model + refilled, s.seed, s.temperature, s.top_k || "", s.top_p || "",
                   result.infill ? "" : s.length,
                   result.samples + (result.stopped ? " (stopped)" : "")];
    const row = element("tr", { "data-result": result.id }, ...cells.map((c) => element("td", { text: String(c) })));
    row.classList.toggle("current", Boolean(state.current && state.current.id === result.id));
    row.append(element("td", {},
      element("button", { class: "link", type: "button", text: "show", onclick: () => showSaved(result.id) }),
      element("button", { class: "link", type: "button", text: "use settings", onclick: () => useSettings(result) })));
    body.append(row);
  }
}

async function showSaved(id) {
  showError("");
  try {
    showResult(await request(`/api/results/${id}`));
  } catch (err) {
    showError(err.message);
  }
}

function useSettings(result) {
  if (state.models.find((m) => m.id === result.model)) chooseModel(result.model);
  const form = $("#settings");
  for (const [key, value] of Object.entries(result.settings)) {
    const field = form.elements[key];
    if (field && value != null && key !== "primer") field.value = value;
    if (key === "primer" && typeof value === "string" && !$("#primer").disabled) field.value = value;
  }
  showTemperature(result.settings.temperature);
  state.temperatureChosen = true;
  $("#new-seed").checked = false;
  $("#stop-at-end").checked = result.settings.stop_at_end !== false;
  $("#voice-leading").checked = result.settings.voice_leading !== false;
  $("#full-bars").checked = result.settings.full_bars !== false;
  $("#seed").disabled = false;
}

// training ----------------------------------------------------------------------------------------------------

// the tokenizers of the base models that each kind of uploaded file fine-tunes (as the studio's BASE_KINDS)
const BASE_KINDS = { abc: ["abc"], char: ["char"], midi: MIDI_KINDS };
const KIND_NAMES = { abc: "ABC tunes", char: "text", midi: "MIDI files" };
// baseChosen: the user picked the model to start from (else the page picks the first that reads the files)
const train = { upload: null, summary: null, source: null, shown: null, baseChosen: false };

function showTab(name) {
  for (const tab of ["generate", "train"]) {
    $(`#${tab}-tab`).hidden = tab !== name;
    $(`#tab-${tab}`).classList.toggle("chosen", tab === name);
  }
  if (name === "train" && train.shown) lossCurve($("#train-curve"), train.shown.metrics);  // now it has a width
}

function fillBases() {
  // the models a training may start from: those that read the uploaded kind of file (all, before any upload)
  const select = $("#train-base");
  const kinds = Object.keys((train.summary && train.summary.kinds) || {});
  const fits = (model) => kinds.length !== 1 || BASE_KINDS[kinds[0]].includes(model.kind);
  const chosen = select.value;
  select.replaceChildren(element("option", { value: "", text: "nothing: a new model" }),
    ...state.models.filter(fits).map((m) => element("option", { value: m.id, text: `${m.name} (${m.kind}, ${m.size})` })));
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
  // files of one kind: fine-tune the first model that reads them, unless the user picked otherwise
  if (!train.baseChosen && kinds.length === 1 && select.options.length > 1) select.selectedIndex = 1;
}

async function addTrainingFiles(files) {
  showError("");
  if (train.summary && train.summary.trained) clearTrainingFiles();  // a run reads those: new files make a new set
  for (const file of files) {
    try {
      const query = new URLSearchParams({ name: file.name });
      if (train.upload) query.set("upload", train.upload);
      train.summary = await request(`/api/train/files?${query}`,
        { method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: file });
      train.upload = train.summary.upload;
      showUpload();
    } catch (err) {
      showError(`${file.name}: ${err.message}`);
      break;
    }
  }
  fillBases();
  $("#train-files").value = "";
  $("#train-folder").value = "";
}

function showUpload() {
  const s = train.summary;
  const kinds = Object.entries((s && s.kinds) || {}).map(([kind, n]) => `${n} ${KIND_NAMES[kind] || kind}`);
  $("#train-upload").textContent = !s ? "no files yet"
    : `${s.files.toLocaleString()} file${s.files === 1 ? "" : "s"} (${(s.bytes / 1024).toFixed(0)} KB${kinds.length ? `: ${kinds.join(", ")}` : ""})`
      + (s.skipped ? ` · ${s.skipped} skipped` : "");
  $("#train-skipped").replaceChildren(...((s && s.reasons) || []).map((r) => element("li", { text: r })));
  $("#train-skipped").hidden = !(s && s.skipped);
  $("#train-clear").hidden = !s;
  $("#train-start").disabled = !s || !s.files || isTraining();
}

function clearTrainingFiles() {
  train.upload = null;
  train.summary = null;
  showUpload();
  fillBases();
}

function isTraining() {
  return Boolean(train.shown && ["running", "stopping"].includes(train.shown.state));
}

async function startTraining(event) {
  event.preventDefault();
  showError("");
  $("#train-start").disabled = true;
  try {
    const body = { upload: train.upload, base: $("#train-base").value, minutes: $("#train-minutes").value };
    showTraining(await request("/api/train", { method: "POST", headers: { "Content-Type": "application/json" },
                                               body: JSON.stringify(body) }));
    train.summary.trained = true;
    followTraining();
    loadModels().then(loadTrainings).catch((err) => showError(err.message));
  } catch (err) {
    showError(err.message);
    showUpload();
  }
}

function followTraining() {
  // the studio's stream of the training: progress (each change), then ended; idle when none has run
  if (train.source) train.source.close();
  const source = new EventSource("/api/train/events");
  train.source = source;
  const done = () => { source.close(); if (train.source === source) train.source = null; };
  source.addEventListener("progress", (e) => {
    const evaluations = train.shown ? train.shown.metrics.length : 0;
    showTraining(JSON.parse(e.data));
    if (train.shown.metrics.length !== evaluations) loadTrainings().catch((err) => showError(err.message));
  });
  source.addEventListener("ended", (e) => {
    done();
    showTraining(JSON.parse(e.data));
    loadModels().then(loadTrainings).catch((err) => showError(err.message));
  });
  source.addEventListener("idle", done);
  source.onerror = () => { if (source.readyState === EventSource.CLOSED) done(); };
}

async function stopTraining() {
  $("#train-stop").disabled = true;
  try {
    await request("/api/train/stop", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    $("#train-status").textContent = "stopping: a last evaluation, then the best model is kept…";
  } catch (err) {
    showError(err.message);
  }
}

function showTraining(t) {
  train.shown = t;
  const running = isTraining();
  $("#train-live").hidden = false;
  $("#train-empty").hidden = true;
  $("#train-title").textContent = t.run;
  const best = t.best_val_loss == null ? "" : ` · best validation loss ${t.best_val_loss.toFixed(3)}`;
  const states = {
    running: `step ${t.steps.toLocaleString()} · ${t.seconds_left} s left${best}`,
    stopping: "stopping: a last evaluation, then the best model is kept…",
    finished: `finished: ${t.steps.toLocaleString()} steps in ${t.seconds} s${best}`,
    stopped: t.kept ? `stopped at step ${t.steps.toLocaleString()}: the best model is kept${best}` : (t.error || "stopped"),
    failed: `failed: ${t.error}`,
  };
  $("#train-status").textContent = states[t.state] || t.state;
  $("#train-status").classList.toggle("failed", t.state === "failed");
  const budget = 60 * t.minutes;
  $("#train-bar").style.width = running ? `${Math.min(100, (100 * (budget - t.seconds_left)) / budget)}%` : "100%";
  $("#train-use").hidden = running || !t.kept;
  $("#train-stop").disabled = t.state !== "running";
  $("#train-start").disabled = running || !(train.summary && train.summary.files);
  showTrainingBusy(running ? state.trainingBusy || "a training is running" : null);
  lossCurve($("#train-curve"), t.metrics);
  trainingSamples(t.samples);
}

function lossCurve(svg, metrics) {
  // training and validation loss at each evaluation, drawn as SVG: no library
  const node = (tag, attributes, text) => {
    const made = document.createElementNS(svg.namespaceURI, tag);
    for (const [key, value] of Object.entries(attributes)) made.setAttribute(key, value);
    if (text != null) made.textContent = text;
    return made;
  };
  // drawn at the size it is shown, so that its text is the page's size (640 wide while its tab is hidden)
  const width = Math.round(svg.clientWidth) || 640, height = 200, left = 46, right = 14, top = 14, bottom = 30;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const points = metrics.filter((m) => m.val_loss != null || m.train_loss != null);
  svg.replaceChildren();
  if (!points.length) {
    svg.append(node("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, "the loss appears at the first evaluation"));
    return;
  }
  const losses = points.flatMap((m) => [m.val_loss, m.train_loss]).filter((v) => v != null);
  let low = Math.min(...losses), high = Math.max(...losses);
  if (high - low < 1e-3) { low -= 0.05; high += 0.05; }
  const first = points[0].step, last = Math.max(points[points.length - 1].step, first + 1);
  const x = (step) => left + ((width - left - right) * (step - first)) / (last - first);
  const y = (loss) => top + ((height - top - bottom) * (high - loss)) / (high - low);
  for (let i = 0; i <= 4; i++) {
    const loss = low + ((high - low) * i) / 4;
    svg.append(node("line", { class: "grid", x1: left, x2: width - right, y1: y(loss), y2: y(loss) }),
               node("text", { x: left - 6, y: y(loss) + 4, "text-anchor": "end" }, loss.toFixed(2)));
  }
  svg.append(node("text", { x: left, y: height - 8 }, `step ${first.toLocaleString()}`),
             node("text", { x: width - right, y: height - 8, "text-anchor": "end" }, `step ${last.toLocaleString()}`));
  for (const [key, cls] of [["train_loss", "train"], ["val_loss", "val"]]) {
    const line = points.filter((m) => m[key] != null).map((m) => `${x(m.step).toFixed(1)},${y(m[key]).toFixed(1)}`);
    svg.append(node("polyline", { class: cls, points: line.join(" ") }));
  }
  for (const m of points) if (m.val_loss != null) svg.append(node("circle", { cx: x(m.step), cy: y(m.val_loss), r: 3 }));
  const legend = node("g", { transform: `translate(${width - right - 250}, ${top + 4})` });
  legend.append(node("line", { class: "val", x1: 0, x2: 18, y1: 0, y2: 0 }), node("text", { x: 24, y: 4 }, "validation loss"),
                node("line", { class: "train", x1: 130, x2: 148, y1: 0, y2: 0 }), node("text", { x: 154, y: 4 }, "training loss"));
  svg.append(legend);
}

function trainingSamples(samples) {
  const box = $("#train-samples");
  $("#train-samples-title").hidden = !samples;
  if (!samples) { box.replaceChildren(); return; }
  const loss = samples.val_loss == null ? "" : ` · validation loss ${samples.val_loss.toFixed(3)}`;
  $("#train-samples-title").textContent = `Samples at step ${samples.step.toLocaleString()}${loss}`;
  const key = `${samples.step}/${samples.texts.length}/${samples.notes.length}`;
  if (box.dataset.shown === key) return;  // the same samples: keep the scroll position
  box.dataset.shown = key;
  box.replaceChildren(...samples.texts.map((text) => element("pre", { text })));
  for (const notes of samples.notes) {
    const canvas = element("canvas", { "aria-label": "piano roll" });
    box.append(canvas);
    if (notes.length) requestAnimationFrame(() => pianoRoll(canvas, notes, null));
  }
}

async function loadTrainings() {
  const data = await request("/api/train/status");
  $("#train-minutes").max = data.limits.minutes;
  const body = $("#trainings tbody");
  $("#trainings-count").textContent = data.history.length ? `${data.history.length} kept on disk` : "none yet";
  body.replaceChildren(...data.history.map((t) => {
    const loss = t.best_val_loss == null ? "" : t.best_val_loss.toFixed(3);
    const cells = [t.started, t.run, t.base || "new", t.minutes, t.files, t.steps, loss];
    const row = element("tr", { "data-training": t.id }, ...cells.map((c) => element("td", { text: String(c ?? "") })),
      element("td", { class: t.state, text: t.state, title: t.error || "" }));
    row.append(element("td", {}, t.kept && state.models.some((m) => m.id === t.model)
      ? element("button", { class: "link", type: "button", text: "generate", onclick: () => useTrained(t.model) }) : ""));
    return row;
  }));
  if (data.training && !train.shown) {
    showTraining(data.training);
    if (isTraining()) followTraining();
  }
}

function useTrained(modelId) {
  location.hash = "#generate";
  chooseModel(modelId);
}

// wiring ------------------------------------------------------------------------------------------------------

$("#temperature-range").addEventListener("input", (e) => {
  $("#temperature").value = e.target.value;
  state.temperatureChosen = true;
});
$("#temperature").addEventListener("input", (e) => {
  $("#temperature-range").value = e.target.value;
  state.temperatureChosen = true;
});
$("#new-seed").addEventListener("change", (e) => { $("#seed").disabled = e.target.checked; });
$("#seed").disabled = true;
$("#settings").addEventListener("submit", generate);
$("#refill").addEventListener("submit", refill);
$("#refill-span").addEventListener("input", showChosen);
$("#refill-sample").addEventListener("input", showChosen);
$("#keep-new").addEventListener("click", () => keep("new"));
$("#keep-original").addEventListener("click", () => keep("original"));
$("#version-previous").addEventListener("click", () => stepVersion(-1));
$("#version-next").addEventListener("click", () => stepVersion(1));
$("#stop").addEventListener("click", stop);
$("#refresh-models").addEventListener("click", () => loadModels().catch((err) => showError(err.message)));
$("#primer-file").addEventListener("change", (e) => { if (e.target.files[0]) uploadPrimer(e.target.files[0]); });
$("#upload-clear").addEventListener("click", clearUpload);
$("#train-files").addEventListener("change", (e) => addTrainingFiles([...e.target.files]));
$("#train-folder").addEventListener("change", (e) => addTrainingFiles([...e.target.files]));
$("#train-clear").addEventListener("click", clearTrainingFiles);
$("#train-base").addEventListener("change", () => { train.baseChosen = true; });
$("#train-form").addEventListener("submit", startTraining);
$("#train-stop").addEventListener("click", stopTraining);
$("#train-use").addEventListener("click", () => useTrained(train.shown.model));
window.addEventListener("hashchange", () => showTab(location.hash === "#train" ? "train" : "generate"));
showTab(location.hash === "#train" ? "train" : "generate");
loadModels().then(loadHistory).then(loadTrainings).catch((err) => showError(err.message));
