// PhotoVeil website: pick photos, upload each straight to storage with a presigned POST,
// poll the job until its faces are blurred, then show the result with a shareable link.
// Plain ES module, no build step, no framework: it deploys unchanged to S3 + CloudFront and runs
// under a strict CSP (no inline script or style, no eval).

export const MAX_UPLOAD_BYTES = 25 * 1024 * 1024;
export const MAX_CONCURRENT = 3;
const POLL_TIMEOUT_MS = 2 * 60 * 1000;
const POLL_FIRST_DELAY_MS = 500;
const POLL_MAX_DELAY_MS = 2000;
const REQUEST_RETRIES = 3; // extra attempts after the first, for network errors, 429 and 5xx
const POLL_ERRORS_BEFORE_GIVING_UP = 6;
// The sized copies follow a done photo within seconds; the page waits for them this long, no more.
const VARIANTS_TIMEOUT_MS = 60 * 1000;
const VARIANT_LABELS = { "800x600": "800 × 600", "400x300": "400 × 300", "200x150": "200 × 150" };

export const ALLOWED_TYPES = ["image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"];
// Some browsers (and every browser for HEIC on some systems) report an empty type: trust the extension then.
const TYPE_BY_EXTENSION = {
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  jpe: "image/jpeg",
  png: "image/png",
  webp: "image/webp",
  heic: "image/heic",
  heif: "image/heif",
};
const TYPE_NAMES = {
  "image/gif": "a GIF",
  "image/svg+xml": "an SVG drawing",
  "image/bmp": "a BMP image",
  "image/tiff": "a TIFF image",
  "image/avif": "an AVIF image",
  "application/pdf": "a PDF document",
  "text/plain": "a text file",
  "text/html": "a web page",
  "application/zip": "a ZIP archive",
};

const STATUS_TEXT = {
  waiting: "Waiting for its turn…",
  requesting: "Preparing the upload…",
  uploading: "Uploading…",
  queued: "Uploaded. Queued for blurring…",
  processing: "Blurring faces…",
  done: "Done",
  failed: "Could not blur this photo",
};

/** A failure the user may fix by trying again (network trouble, throttling, server hiccup). */
export class TransientError extends Error {
  constructor(message) {
    super(message);
    this.name = "TransientError";
  }
}

/** A failure trying again will not fix (bad file, refused request). */
export class PermanentError extends Error {
  constructor(message, code = "") {
    super(message);
    this.name = "PermanentError";
    this.code = code;
  }
}

// ---------------------------------------------------------------------------------------------
// Pure helpers (exported so the browser test can exercise them directly).

/** The content type to declare for a file, or "" when it is not one PhotoVeil accepts. */
export function contentTypeOf(file) {
  const type = (file.type || "").toLowerCase();
  if (ALLOWED_TYPES.includes(type)) return type;
  if (type && type !== "application/octet-stream") return "";
  const ext = (file.name.split(".").pop() || "").toLowerCase();
  return TYPE_BY_EXTENSION[ext] || "";
}

/** A human message when the file cannot be sent, or null when it looks fine. */
export function checkFile(file, maxBytes = MAX_UPLOAD_BYTES) {
  if (!contentTypeOf(file)) {
    const kind = TYPE_NAMES[(file.type || "").toLowerCase()] || "not a supported photo type";
    return `“${file.name}” is ${kind}. PhotoVeil accepts JPEG, PNG, WebP and HEIC photos.`;
  }
  if (file.size === 0) return `“${file.name}” is empty (0 bytes).`;
  if (file.size > maxBytes) {
    return `“${file.name}” is ${formatBytes(file.size)}; the limit is ${formatBytes(maxBytes)} per photo.`;
  }
  return null;
}

export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1).replace(/\.0$/, "")} MB`;
}

/** The job view's expiresAt (an ISO 8601 string) as a Date, or null when it is missing or unreadable. */
export function parseExpiry(value) {
  if (typeof value !== "string") return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

export function formatDate(date) {
  return new Intl.DateTimeFormat(undefined, { dateStyle: "long" }).format(date);
}

/** The number of faces blurred, from a job view (`faces`: a count, or null when there is none). */
export function faceCount(body) {
  return Number.isInteger(body.faces) ? body.faces : null;
}

export function facesText(n) {
  if (n === null) return "Faces blurred";
  if (n === 0) return "No faces found";
  return n === 1 ? "1 face blurred" : `${n} faces blurred`;
}

/** Server messages may start lower-case and lack a full stop: show them as a sentence. */
export function asSentence(message) {
  const text = String(message).trim();
  if (!text) return text;
  const capital = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?…)]$/.test(capital) ? capital : `${capital}.`;
}

const isEmail = (value) => /^[^\s@<>",;]+@[^\s@<>",;]+\.[^\s@<>",;]+$/.test(value);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
// Jitter spreads retries from many browsers so they do not hit the API in lockstep.
const backoff = (attempt) => Math.min(500 * 2 ** attempt, 4000) * (0.75 + Math.random() * 0.5);

function retryAfterMs(response) {
  const header = response.headers.get("Retry-After");
  const seconds = header ? Number(header) : NaN;
  return Number.isFinite(seconds) ? Math.min(seconds * 1000, 10000) : null;
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) return { message: body.error.message, code: body.error.code };
  } catch {
    // not JSON: fall through to a generic message
  }
  return { message: `The server answered ${response.status}.`, code: "" };
}

/**
 * fetch() a JSON API, retrying network errors, 429 and 5xx with backoff.
 * Resolves to the parsed body; throws PermanentError (4xx) or TransientError (retries exhausted).
 */
export async function requestJSON(url, options = {}, retries = REQUEST_RETRIES) {
  let lastProblem = "";
  for (let attempt = 0; attempt <= retries; attempt += 1) {
    let wait = backoff(attempt);
    try {
      const response = await fetch(url, { ...options, headers: { Accept: "application/json", ...options.headers } });
      if (response.ok) return await response.json();
      const { message, code } = await errorMessage(response);
      if (response.status !== 429 && response.status < 500) throw new PermanentError(message, code);
      lastProblem = response.status === 429 ? "The service is busy right now." : message;
      wait = retryAfterMs(response) ?? wait;
    } catch (error) {
      if (error instanceof PermanentError) throw error;
      lastProblem = "Could not reach PhotoVeil. Check your connection.";
    }
    if (attempt < retries) await sleep(wait);
  }
  throw new TransientError(lastProblem);
}

/** Pull S3's <Message> out of its XML error body, when there is one. */
function storageMessage(xhr) {
  const match = /<Message>([^<]*)<\/Message>/.exec(xhr.responseText || "");
  return match ? match[1] : `storage answered ${xhr.status}`;
}

/** One multipart POST of the file to the presigned URL: policy fields first, the file LAST (S3 requires it). */
function postFormOnce(upload, file, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const [name, value] of Object.entries(upload.fields)) form.append(name, value);
    form.append("file", file);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", upload.url);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve();
      else if (xhr.status === 429 || xhr.status >= 500) reject(new TransientError(`Upload failed: ${storageMessage(xhr)}.`));
      else reject(new PermanentError(`The upload was refused: ${storageMessage(xhr)}.`));
    };
    xhr.onerror = () => reject(new TransientError("The upload was interrupted. Check your connection."));
    xhr.ontimeout = xhr.onerror;
    xhr.send(form);
  });
}

async function postForm(upload, file, onProgress, retries = 2) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await postFormOnce(upload, file, onProgress);
    } catch (error) {
      if (error instanceof PermanentError || attempt >= retries) throw error;
      onProgress(0);
      await sleep(backoff(attempt));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Config

let configPromise = null;

/** /config.json is written by `make deploy` (AWS) or served by the local gateway. */
export function loadConfig() {
  configPromise ??= fetch("config.json", { cache: "no-store" }).then(async (response) => {
    if (!response.ok) throw new Error(`config.json answered ${response.status}`);
    const config = await response.json();
    if (!config.apiUrl) throw new Error("config.json has no apiUrl");
    return { ...config, apiUrl: String(config.apiUrl).replace(/\/+$/, "") };
  });
  // a failed load is not cached: Retry (or the next photo) tries again
  configPromise.catch(() => {
    configPromise = null;
  });
  return configPromise;
}

// ---------------------------------------------------------------------------------------------
// One card per photo

class PhotoCard {
  constructor(file, email, list) {
    this.file = file;
    this.email = email;
    this.job = null; // {jobId, statusUrl} once the API has created it
    this.uploaded = false;
    this.objectUrl = null;

    const fragment = document.getElementById("card-template").content.cloneNode(true);
    this.el = fragment.querySelector(".card");
    this.q = (selector) => this.el.querySelector(selector);
    const id = `card-${crypto.getRandomValues(new Uint32Array(2)).join("")}`;
    this.el.id = id;
    this.q(".card-name").textContent = file.name;
    this.q(".card-size").textContent = formatBytes(file.size);
    this.q(".card-progress").id = `${id}-progress`;
    this.q(".card-progress").setAttribute("aria-label", `Progress for ${file.name}`);
    this.q(".link-input").id = `${id}-link`;
    this.q(".link-row label").htmlFor = `${id}-link`;
    this.q(".copy-btn").addEventListener("click", () => this.copyLink());
    this.q(".retry-btn").addEventListener("click", () => this.retry());
    list.append(this.el);
  }

  /** A softened local preview while the real blur happens server-side (HEIC may not preview: fine). */
  showPreview() {
    const thumb = this.q(".card-thumb");
    this.objectUrl = URL.createObjectURL(this.file);
    thumb.classList.add("is-original");
    thumb.alt = "";
    thumb.onload = () => {
      thumb.hidden = false;
      this.q(".card-placeholder").hidden = true;
    };
    thumb.onerror = () => {
      // not an image this browser can show (HEIC in most browsers, or not an image at all): no empty box
      thumb.hidden = true;
      this.el.classList.add("no-preview");
    };
    thumb.src = this.objectUrl;
  }

  setState(state, text = STATUS_TEXT[state] || state) {
    this.el.dataset.state = state;
    this.q(".card-status").textContent = text;
  }

  setProgress(fraction) {
    const bar = this.q(".card-progress");
    this.q(".progress-row").hidden = false;
    if (fraction === null) {
      bar.removeAttribute("value"); // indeterminate: the job is being processed
      bar.removeAttribute("aria-valuenow");
      bar.removeAttribute("aria-valuetext");
      this.q(".card-percent").textContent = "";
      return;
    }
    const percent = Math.round(fraction * 100);
    bar.value = percent;
    bar.setAttribute("aria-valuenow", String(percent));
    bar.setAttribute("aria-valuetext", `${percent}% uploaded`);
    // the percentage is shown beside the bar, not in the live status, so screen readers are not flooded
    this.q(".card-percent").textContent = `${percent}%`;
    if (this.el.dataset.state !== "uploading") this.setState("uploading");
  }

  reject(message) {
    this.setState("invalid", "Not uploaded");
    this.showError(message, false);
  }

  /** The whole life of one photo: presign, upload, poll. */
  async run() {
    this.hideError();
    try {
      const config = await loadConfig();
      if (!this.uploaded) {
        this.setState("requesting");
        const body = { contentType: contentTypeOf(this.file), size: this.file.size };
        if (this.email) body.email = this.email;
        const created = await requestJSON(`${config.apiUrl}/uploads`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(body),
        });
        this.job = { jobId: created.jobId, statusUrl: created.statusUrl };
        this.setProgress(0);
        await postForm(created.upload, this.file, (fraction) => this.setProgress(fraction));
        this.setProgress(1);
        this.uploaded = true;
      }
      this.setState("queued");
      this.setProgress(null);
      const final = await this.poll();
      if (final.status === "done") {
        this.showDone(final);
        // not awaited: the sized copies must not hold this photo's upload slot for the next photo
        this.followVariants(final).catch((error) => console.warn("PhotoVeil: variants", error));
      } else this.showFailed(final);
    } catch (error) {
      this.hideProgress();
      if (error instanceof PermanentError) {
        this.setState("failed", "Not uploaded");
        this.showError(error.message, false);
      } else if (error instanceof TransientError) {
        this.setState("error", "Interrupted");
        this.showError(error.message, true);
      } else {
        // config missing or a bug: say so plainly rather than spin forever
        console.warn("PhotoVeil:", error);
        this.setState("error", "Interrupted");
        this.showError("Something went wrong on this page. Reload it and try again.", true);
      }
    }
  }

  /** Poll the job with backoff until done/failed, a timeout, or too many errors in a row. */
  async poll() {
    const started = Date.now();
    let delay = POLL_FIRST_DELAY_MS;
    let errorsInARow = 0;
    for (;;) {
      try {
        const body = await requestJSON(this.job.statusUrl, { cache: "no-store" }, 0);
        errorsInARow = 0;
        if (body.status === "done" || body.status === "failed") return body;
        this.setState(body.status === "processing" ? "processing" : "queued");
      } catch (error) {
        if (error instanceof PermanentError) throw error;
        errorsInARow += 1;
        if (errorsInARow >= POLL_ERRORS_BEFORE_GIVING_UP) throw error;
      }
      if (Date.now() - started > POLL_TIMEOUT_MS) {
        throw new TransientError(
          "This is taking longer than expected (over 2 minutes). Your photo may still finish: check again in a moment.",
        );
      }
      await sleep(delay);
      delay = Math.min(delay * 1.5, POLL_MAX_DELAY_MS);
    }
  }

  hideProgress() {
    this.q(".progress-row").hidden = true;
  }

  /** Once a done photo's sized copies exist, show the 400x300 one (800x600 for dense screens) and link all. */
  async followVariants(done) {
    const started = Date.now();
    let body = done;
    let delay = POLL_FIRST_DELAY_MS;
    while (!body.variants) {
      if (Date.now() - started > VARIANTS_TIMEOUT_MS) return; // the full-size photo stays: nothing is lost
      await sleep(delay);
      delay = Math.min(delay * 1.5, POLL_MAX_DELAY_MS);
      try {
        body = await requestJSON(this.job.statusUrl, { cache: "no-store" }, 0);
      } catch {
        continue; // a missed poll only delays the thumbnail
      }
      if (body.status !== "done") return;
    }
    this.showVariants(body.variants);
  }

  showVariants(variants) {
    const thumb = this.q(".card-thumb");
    // 800x600 is twice 400x300 in both orientations (a portrait's are 600x800 and 300x400)
    thumb.srcset = `${variants["400x300"]} 1x, ${variants["800x600"]} 2x`;
    thumb.src = variants["400x300"];
    const links = this.q(".variant-links");
    links.replaceChildren("Sizes: ");
    for (const [name, label] of Object.entries(VARIANT_LABELS)) {
      const link = document.createElement("a");
      link.href = variants[name];
      link.textContent = label;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      links.append(link, " ");
    }
    links.hidden = false;
  }

  showDone(body) {
    this.hideProgress();
    const faces = faceCount(body);
    this.setState("done", "Done: ready to share");
    const thumb = this.q(".card-thumb");
    // the softened original stays on screen until the blurred photo has loaded, never shown sharp
    thumb.onload = () => {
      thumb.classList.remove("is-original");
      thumb.hidden = false;
      this.el.classList.remove("no-preview");
      this.q(".card-placeholder").hidden = true;
      if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    };
    thumb.onerror = null;
    thumb.alt = `${this.file.name} with ${faces === null ? "its" : faces} ${faces === 1 ? "face" : "faces"} blurred`;
    thumb.src = body.photoUrl;

    const expiry = parseExpiry(body.expiresAt);
    const meta = this.q(".card-meta");
    meta.replaceChildren();
    const count = document.createElement("strong");
    count.className = "face-count";
    count.textContent = facesText(faces);
    meta.append(count);
    if (expiry) {
      const time = document.createElement("time");
      time.dateTime = expiry.toISOString();
      time.textContent = formatDate(expiry);
      const expires = document.createElement("span");
      expires.className = "expiry";
      expires.title = "Deleted within about two days after this date";
      expires.append("Link works until ", time);
      meta.append(expires);
    }
    this.q(".link-input").value = body.photoUrl;
    this.q(".open-link").href = body.photoUrl;
    this.q(".card-result").hidden = false;
    announce(`${this.file.name}: ${facesText(faces).toLowerCase()}. The link is ready.`);
  }

  showFailed(body) {
    this.hideProgress();
    this.setState("failed");
    const message = body.error.message || "The photo could not be processed.";
    // not_finished: every retry on our side failed and nothing was published; the photo is still on this
    // page, so Retry sends it again as a new job (any other failure is about the file: retrying cannot help)
    const canSendAgain = body.error.code === "not_finished";
    if (canSendAgain) {
      this.uploaded = false;
      this.job = null;
    }
    this.showError(message, canSendAgain);
    announce(`${this.file.name}: could not be blurred. ${message}`);
  }

  showError(message, canRetry) {
    this.q(".error-message").textContent = asSentence(message);
    const retry = this.q(".retry-btn");
    retry.hidden = !canRetry;
    retry.textContent = this.uploaded ? "Check again" : "Retry";
    this.q(".card-error").hidden = false;
  }

  hideError() {
    this.q(".card-error").hidden = true;
  }

  retry() {
    this.q(".retry-btn").hidden = true;
    schedule(this);
  }

  async copyLink() {
    const input = this.q(".link-input");
    const status = this.q(".copy-status");
    let copied = false;
    try {
      await navigator.clipboard.writeText(input.value);
      copied = true;
    } catch {
      // no clipboard API (insecure context, old browser, denied): select and use the legacy command
      input.focus();
      input.select();
      try {
        copied = document.execCommand("copy");
      } catch {
        copied = false;
      }
    }
    status.textContent = copied ? "Copied" : "Press Ctrl+C (or ⌘C) to copy the selected link";
    status.classList.toggle("is-ok", copied);
    clearTimeout(this.copyTimer);
    this.copyTimer = setTimeout(() => {
      status.textContent = "";
    }, 4000);
  }
}

// ---------------------------------------------------------------------------------------------
// A small queue: at most MAX_CONCURRENT photos in flight, the rest wait their turn.

const pending = [];
let active = 0;

function schedule(card) {
  card.setState("waiting");
  pending.push(card);
  pump();
}

function pump() {
  while (active < MAX_CONCURRENT && pending.length) {
    const card = pending.shift();
    active += 1;
    card.run().finally(() => {
      active -= 1;
      pump();
    });
  }
}

function announce(text) {
  const announcer = document.getElementById("announcer");
  announcer.textContent = text;
}

// ---------------------------------------------------------------------------------------------
// Page wiring

function showFormError(message) {
  const el = document.getElementById("form-error");
  el.textContent = message || "";
  el.hidden = !message;
}

function readEmail() {
  const input = document.getElementById("email");
  const error = document.getElementById("email-error");
  const value = input.value.trim();
  const bad = value !== "" && (!isEmail(value) || value.length > 254);
  error.textContent = bad ? "That email address does not look right. Fix it or leave it empty." : "";
  error.hidden = !bad;
  input.setAttribute("aria-invalid", bad ? "true" : "false");
  return bad ? null : value;
}

function addFiles(fileList) {
  const files = Array.from(fileList || []);
  if (!files.length) return;
  const email = readEmail();
  if (email === null) {
    showFormError("Check the email address first, then choose your photos again.");
    document.getElementById("email").focus();
    return;
  }
  showFormError("");
  const list = document.getElementById("results");
  document.getElementById("results-section").hidden = false;
  // newest first, so the photo just chosen is the one in view
  const staging = document.createElement("div");
  const cards = files.map((file) => new PhotoCard(file, email, staging));
  list.prepend(...staging.children);
  for (const card of cards) {
    const problem = checkFile(card.file);
    if (problem) {
      card.reject(problem);
    } else {
      card.showPreview();
      schedule(card);
    }
  }
  const accepted = cards.length - cards.filter((card) => card.el.dataset.state === "invalid").length;
  if (accepted === 0) announce("None of the chosen files can be uploaded.");
  else announce(accepted === 1 ? "Uploading 1 photo." : `Uploading ${accepted} photos.`);
}

function init() {
  const input = document.getElementById("file");
  const zone = document.getElementById("dropzone");
  input.addEventListener("change", () => {
    addFiles(input.files);
    input.value = ""; // so choosing the same file again still fires "change"
  });
  document.getElementById("email").addEventListener("blur", readEmail);
  document.getElementById("upload-form").addEventListener("submit", (event) => event.preventDefault());

  // Drag and drop: highlight the zone; a drop anywhere on the page counts, so a near miss
  // does not make the browser navigate away to the photo.
  let depth = 0;
  const hasFiles = (event) => Array.from(event.dataTransfer?.types || []).includes("Files");
  document.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    depth += 1;
    zone.classList.add("is-dragover");
  });
  document.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) zone.classList.remove("is-dragover");
  });
  document.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  document.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth = 0;
    zone.classList.remove("is-dragover");
    addFiles(event.dataTransfer.files);
  });

  // Load the config early so a broken deployment is reported before anyone picks a photo.
  loadConfig().catch((error) => {
    console.warn("PhotoVeil: could not load config.json:", error);
    showFormError("PhotoVeil is not configured correctly (config.json is missing). Please try again later.");
  });
  document.documentElement.classList.add("js-ready");
}

init();
