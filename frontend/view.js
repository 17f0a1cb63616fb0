// The page a shared link opens (view.html#<jobId>): the photo as it is now, its sizes, when it expires,
// and "Report this photo". It reads GET /jobs/{jobId} every time, so the link survives the owner's edits
// (each edit publishes the JPEG under a new address; this page follows it). Same CSP as the upload page:
// no inline script or style, nothing from elsewhere.

import { PermanentError, loadConfig, requestJSON } from "./api.js";
import { asSentence, formatDate, parseExpiry } from "./format.js";

// The reasons the API accepts (photoveil.service.reports.REASONS), in the order they are offered.
export const REPORT_REASONS = [
  ["sexual", "Sexual content"],
  ["violence", "Violence"],
  ["hate", "Hate"],
  ["my_face", "My face or my child's face is visible"],
  ["illegal", "Something illegal"],
  ["other", "Something else"],
];
export const MAX_NOTE_LENGTH = 500;
const SIZE_LABELS = [
  ["800x600", "800 × 600"],
  ["400x300", "400 × 300"],
  ["200x150", "200 × 150"],
];
const JOB_ID = /^[0-9a-f]{32}$/;
const GONE = "This photo is no longer online: it expired or was deleted.";

/** The job id in the address's fragment (view.html#<jobId>), or null. */
export function jobIdFromHash(hash) {
  const id = String(hash || "").replace(/^#/, "");
  return JOB_ID.test(id) ? id : null;
}

/** srcset for a photo's sizes: widths of a landscape photo, or of a portrait one (its sizes are turned). */
export function srcsetOf(variants, portrait = false) {
  const widths = portrait ? { "400x300": 300, "800x600": 600 } : { "400x300": 400, "800x600": 800 };
  return Object.entries(widths)
    .map(([name, width]) => `${variants[name]} ${width}w`)
    .join(", ");
}

/** What the page says for a status that shows no photo (null: the photo is shown). */
export function absenceText(body) {
  if (body.status === "done" || (body.status === "processing" && body.photoUrl)) return null;
  if (body.status === "withdrawn") {
    return "This photo has been taken offline while reports about it are reviewed.";
  }
  if (body.status === "deleted") return "This photo was deleted by the person who shared it.";
  if (body.status === "failed") return "This photo was never published.";
  return "This photo is not ready yet. Try again in a minute.";
}

const $ = (id) => document.getElementById(id);

function say(text) {
  $("viewer-status").textContent = text;
  $("viewer-status").hidden = false;
}

function showPhoto(body) {
  const image = $("photo");
  image.removeAttribute("srcset"); // an older version's sizes must not win over the current src
  if (body.variants) {
    image.src = body.variants["800x600"];
    image.srcset = srcsetOf(body.variants);
    // A portrait's sizes are 600 × 800 and 300 × 400: say so once the browser knows the orientation.
    image.addEventListener(
      "load",
      () => {
        if (image.naturalHeight > image.naturalWidth) image.srcset = srcsetOf(body.variants, true);
      },
      { once: true },
    );
  } else {
    image.src = body.photoUrl; // the sizes follow within seconds of publishing
  }
  $("photo-link").href = body.photoUrl;
  showDetails(body);
  $("viewer-status").hidden = true;
  $("viewer-photo").hidden = false;
}

function showDetails(body) {
  const expiry = parseExpiry(body.expiresAt);
  const line = $("expiry");
  line.replaceChildren();
  if (expiry) {
    const time = document.createElement("time");
    time.dateTime = expiry.toISOString();
    time.textContent = formatDate(expiry);
    line.append("Online until ", time, ", then deleted.");
  }
  const sizes = $("sizes");
  sizes.replaceChildren("Download: ");
  const links = body.variants ? SIZE_LABELS.map(([name, label]) => [body.variants[name], label]) : [];
  for (const [href, label] of [...links, [body.photoUrl, "full-size JPEG"]]) {
    const link = document.createElement("a");
    link.href = href;
    link.textContent = label;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    sizes.append(link, " ");
  }
}

function buildReasons() {
  const box = $("report-reasons");
  box.replaceChildren();
  for (const [value, label] of REPORT_REASONS) {
    const id = `reason-${value}`;
    const input = Object.assign(document.createElement("input"), { type: "radio", name: "reason", value, id });
    const text = Object.assign(document.createElement("label"), { htmlFor: id, textContent: label });
    const row = document.createElement("div");
    row.className = "reason";
    row.append(input, text);
    box.append(row);
  }
}

async function sendReport(event, apiUrl, jobId) {
  event.preventDefault();
  const form = $("report-form");
  const error = $("report-error");
  const reason = form.querySelector("input[name=reason]:checked")?.value;
  if (!reason) {
    error.textContent = "Choose what is wrong with the photo.";
    error.hidden = false;
    form.querySelector("input[name=reason]").focus();
    return;
  }
  const note = $("report-note").value.trim().slice(0, MAX_NOTE_LENGTH);
  error.hidden = true;
  $("report-send").disabled = true;
  try {
    await requestJSON(`${apiUrl}/jobs/${jobId}/report`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(note ? { reason, note } : { reason }),
    });
  } catch (problem) {
    error.textContent = asSentence(problem.message);
    error.hidden = false;
    $("report-send").disabled = false;
    return;
  }
  form.hidden = true;
  $("report-sent").textContent = "Thank you: your report was sent. A person will review this photo.";
  $("report-sent").hidden = false;
  $("report-sent").focus();
}

async function show() {
  const jobId = jobIdFromHash(window.location.hash);
  if (!jobId) return say("This link is incomplete: it names no photo. Check that you copied all of it.");
  let config;
  try {
    config = await loadConfig();
    const body = await requestJSON(`${config.apiUrl}/jobs/${jobId}`, { cache: "no-store" });
    const absent = absenceText(body);
    if (absent) return say(absent);
    showPhoto(body);
  } catch (problem) {
    if (problem instanceof PermanentError && problem.code === "job_not_found") return say(GONE);
    return say(`The photo could not be loaded. ${asSentence(problem.message)} Reload the page to try again.`);
  }
  buildReasons();
  $("report-form").addEventListener("submit", (event) => sendReport(event, config.apiUrl, jobId));
  $("report").hidden = false;
}

show();
window.addEventListener("hashchange", () => window.location.reload());
document.documentElement.classList.add("js-ready");
