// The mood picker: one click asks the server for a piece, which is polled until it is ready.
// One piece at a time: the buttons stay disabled while a piece is composed (the server refuses
// a second one with 409 anyway, e.g. from another tab, and this page then follows that piece).
"use strict";

const POLL_MS = 400;
const $ = (id) => document.getElementById(id);
let status = null; // the last /api/status answer

async function call(url, options) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (err) {
    return { code: 0, body: { error: "the moodgen server does not answer; is `python -m moodgen.serve` still running?" } };
  }
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  return { code: response.status, body };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const capitalized = (text) => text.charAt(0).toUpperCase() + text.slice(1);
const withArticle = (word) => `${/^[aeiou]/i.test(word) ? "an" : "a"} ${word}`; // "an angry", "a calm"

function say(text) {
  $("message").textContent = text || "";
  $("message").hidden = !text;
}

function setBusy(busy) {
  const usable = Boolean(status && status.model) && !busy;
  for (const button of document.querySelectorAll("#moods button")) button.disabled = !usable;
  $("length").disabled = !usable;
  document.body.classList.toggle("busy", busy);
}

function showLength() {
  $("length-value").textContent = `${$("length").value} s`;
}

function renderPicker() {
  const moods = $("moods");
  if (!moods.children.length) {
    for (const mood of status.moods) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = `mood mood-${mood}`;
      button.dataset.mood = mood;
      button.textContent = capitalized(mood);
      button.addEventListener("click", () => compose(mood));
      moods.append(button);
    }
    const length = $("length");
    Object.assign(length, { min: status.duration.min, max: status.duration.max, value: status.duration.default });
    showLength();
  }
  $("model").textContent = status.model
    ? `Model: ${status.model.run_name || status.model.run_id} · steering: ${status.steering}`
    : "No model loaded";
  $("no-model").hidden = Boolean(status.model);
  $("train-command").textContent = status.train_command;
  $("no-model-reason").textContent = status.problem || "";
}

function renderHistory() {
  const list = $("history");
  list.replaceChildren();
  for (const job of status.history) {
    const item = document.createElement("li");
    const play = document.createElement("button");
    play.type = "button";
    play.className = "link";
    play.textContent = `${capitalized(job.mood)} · ${job.piece.seconds.toFixed(1)} s · ${job.piece.notes} notes`;
    play.addEventListener("click", () => show(job));
    item.append(play);
    list.append(item);
  }
  $("history-section").hidden = !status.history.length;
}

async function refresh() {
  const { code, body } = await call("/api/status");
  if (code !== 200) {
    say(body.error);
    return;
  }
  status = body;
  renderPicker();
  renderHistory();
  if (status.job) await follow(status.job);
  else setBusy(false);
}

async function compose(mood) {
  setBusy(true);
  say("");
  const request = { mood, duration: Number($("length").value) };
  const { code, body } = await call("/api/pieces", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(request),
  });
  if (code === 202) return follow(body);
  if (code === 409) {
    say("A piece is already being composed; it appears here when it is ready.");
    return follow(body.job);
  }
  say(body.error);
  if (code === 503) await refresh(); // the model went away: show how to train one
  else setBusy(false);
}

function showProgress(job, began) {
  const seconds = Math.round((Date.now() - began) / 1000);
  $("progress-text").textContent = `Composing ${withArticle(job.mood)} piece of ${job.duration} s… ${seconds} s`;
  $("progress").hidden = false;
}

async function follow(job) {
  setBusy(true);
  const began = Date.now() - 1000 * (job.elapsed || 0);
  while (job.state === "running") {
    showProgress(job, began);
    await sleep(POLL_MS);
    const { code, body } = await call(`/api/jobs/${job.id}`);
    if (code !== 200) {
      say(body.error);
      break;
    }
    job = body;
  }
  $("progress").hidden = true;
  if (job.state === "done") show(job);
  if (job.state === "failed") say(job.error);
  await refresh();
}

function show(job) {
  const { piece } = job;
  const by = piece.judged_by ? ` by the ${piece.judged_by}` : "";
  const judged = piece.judged_mood ? ` · judged ${piece.judged_mood}${by}` : "";
  $("piece-title").textContent = `${capitalized(job.mood)} · ${piece.seconds.toFixed(1)} s · ${piece.notes} notes${judged}`;
  const audio = $("audio");
  const wav = piece.files.wav;
  audio.hidden = !wav;
  $("download-wav").hidden = !wav;
  $("no-audio").hidden = Boolean(wav);
  if (wav) {
    audio.src = wav;
    $("download-wav").href = wav;
    $("download-wav").download = `${job.name}.wav`;
    audio.play().catch(() => {}); // a browser may refuse to start sound by itself: the controls remain
  } else {
    audio.removeAttribute("src");
    const missing = (status && status.audio_missing) || "fluidsynth";
    $("no-audio").textContent =
      `Audio is unavailable: ${missing} is not installed on the server (apt-get install fluidsynth). ` +
      "The MIDI file plays in any music program.";
  }
  $("roll").src = piece.files.png;
  $("download-midi").href = piece.files.midi;
  $("download-midi").download = `${job.name}.mid`;
  const player = $("player");
  player.dataset.job = job.id;
  player.dataset.mood = job.mood;
  player.hidden = false;
}

$("length").addEventListener("input", showLength);
refresh();
