// PhotoVeil website: pick photos, upload each straight to storage with a presigned POST,
// poll the job until its faces are blurred, then show the result with a shareable link.
// Plain ES modules, no build step, no framework: they deploy unchanged to S3 + CloudFront and run
// under a strict CSP (no inline script or style, no eval). The uploader of a photo may then blur more of
// it or delete it (regions.js draws the areas; owned.js keeps the owner tokens across reloads).

import { forgetOwned, linkFromHash, ownedPhotos, readOwned, rememberOwned, updateOwned } from "./owned.js";
import { RegionEditor } from "./regions.js";
import { PermanentError, REQUEST_RETRIES, TransientError, backoff, loadConfig, requestJSON, sleep } from "./api.js";
import { asSentence, faceCount, facesText, formatBytes, formatDate, parseExpiry } from "./format.js";

// Re-exported: the browser test exercises the shared helpers through this page's module too.
export { PermanentError, TransientError, loadConfig, requestJSON };
export { asSentence, faceCount, facesText, formatBytes, formatDate, parseExpiry };

export const MAX_UPLOAD_BYTES = 25 * 1024 * 1024;
export const MAX_CONCURRENT = 3;
const POLL_TIMEOUT_MS = 2 * 60 * 1000;
const POLL_FIRST_DELAY_MS = 500;
const POLL_MAX_DELAY_MS = 2000;
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
  checking: "Checking the photo…",
  editing: "Blurring the areas you marked…",
};
const DELETED_TEXT = { status: "Deleted", note: "This photo was deleted, in every size. Its link no longer works." };
const GONE_TEXT = { status: "No longer online", note: "This photo is no longer online: it expired or was deleted." };
const EDITED_TEXT = "The link stays the same: it now shows this version. Only the full-size JPEG's own address changed.";
const WRONG_TOKEN_TEXT =
  "This photo cannot be changed or deleted from here: its owner key was not accepted (an old or mistyped link?). " +
  "The photo is unchanged.";
// Refusals that end what the owner can do on this card (the others leave the editor open to try again)
const CARD_REFUSALS = ["job_not_found", "wrong_token", "missing_token", "too_many_edits"];

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

const isEmail = (value) => /^[^\s@<>",;]+@[^\s@<>",;]+\.[^\s@<>",;]+$/.test(value);

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
// One card per photo

const cardsByJob = new Map(); // jobId -> PhotoCard, so an email link for a photo on screen reuses its card

/** Why an edit was not sent, for the editor (which stays open, its areas kept, to try again). */
function editRefusalText(error) {
  if (error instanceof PermanentError && error.code === "not_ready") {
    return "The photo is being changed right now. Wait a moment, then apply again: your areas are kept.";
  }
  if (error instanceof TransientError) return `${error.message} Your areas are kept: apply again.`;
  if (error instanceof PermanentError) return asSentence(error.message);
  console.warn("PhotoVeil:", error);
  return "Something went wrong on this page. Try again.";
}

class PhotoCard {
  /** A photo chosen here (`file`), or one this browser owns from before (`owned`: a reload, the email link). */
  constructor({ file = null, owned = null, email = "" }, list) {
    this.file = file;
    this.email = email;
    this.name = file ? file.name : owned.name;
    this.job = owned ? { jobId: owned.jobId, statusUrl: owned.statusUrl } : null; // once the API has created it
    this.token = owned ? owned.token : null; // proves ownership; sent only in an Authorization header
    this.uploaded = Boolean(owned);
    this.checkOnly = Boolean(owned); // nothing to upload: only ask how the photo is
    this.photoUrl = null; // the full published photo, once done
    this.canEdit = true;
    this.editor = null;
    this.objectUrl = null;
    if (owned) cardsByJob.set(owned.jobId, this);

    const fragment = document.getElementById("card-template").content.cloneNode(true);
    this.el = fragment.querySelector(".card");
    this.q = (selector) => this.el.querySelector(selector);
    const id = `card-${crypto.getRandomValues(new Uint32Array(2)).join("")}`;
    this.el.id = id;
    this.q(".card-name").textContent = this.name;
    const size = file ? file.size : owned.size;
    this.q(".card-size").textContent = Number.isFinite(size) ? formatBytes(size) : "";
    this.q(".card-size").hidden = !Number.isFinite(size);
    this.q(".card-progress").id = `${id}-progress`;
    this.q(".card-progress").setAttribute("aria-label", `Progress for ${this.name}`);
    this.q(".link-input").id = `${id}-link`;
    this.q(".link-row label").htmlFor = `${id}-link`;
    this.q(".card-editor").id = `${id}-editor`;
    this.q(".editor-help").id = `${id}-editor-help`;
    this.q(".blur-more-btn").setAttribute("aria-controls", `${id}-editor`);
    this.q(".copy-btn").addEventListener("click", () => this.copyLink());
    this.q(".retry-btn").addEventListener("click", () => this.retry());
    this.q(".blur-more-btn").addEventListener("click", () => this.toggleEditor());
    this.q(".delete-btn").addEventListener("click", () => this.deletePhoto());
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

  /** The whole life of one photo: presign, upload, poll (a photo owned from before: poll only). */
  async run() {
    this.hideError();
    const quiet = this.checkOnly; // a photo only checked again is not announced again
    try {
      const config = await loadConfig();
      if (!this.uploaded) await this.upload(config);
      this.setState(quiet ? "checking" : "queued");
      this.setProgress(null);
      this.settle(await this.poll(), quiet ? null : undefined);
    } catch (error) {
      this.runFailed(error);
    }
  }

  async upload(config) {
    this.setState("requesting");
    const body = { contentType: contentTypeOf(this.file), size: this.file.size };
    if (this.email) body.email = this.email;
    const created = await requestJSON(`${config.apiUrl}/uploads`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    this.job = { jobId: created.jobId, statusUrl: created.statusUrl };
    this.token = typeof created.ownerToken === "string" ? created.ownerToken : null;
    this.setProgress(0);
    await postForm(created.upload, this.file, (fraction) => this.setProgress(fraction));
    this.setProgress(1);
    this.uploaded = true;
    cardsByJob.set(this.job.jobId, this);
    // kept from here on: a reload before the upload ended could not have finished it anyway
    if (this.token) {
      const { jobId, statusUrl } = this.job;
      const owned = { jobId, statusUrl, token: this.token, name: this.name, size: this.file.size };
      rememberOwned({ ...owned, savedAt: Date.now(), expiresAt: null });
    }
  }

  runFailed(error) {
    this.hideProgress();
    if (error instanceof PermanentError && error.code === "job_not_found" && this.uploaded) {
      this.withdraw("gone", GONE_TEXT);
    } else if (error instanceof PermanentError) {
      this.setState("failed", this.uploaded ? "Could not check this photo" : "Not uploaded");
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

  /** Poll the job with backoff until done/failed/deleted, a timeout, or too many errors in a row. */
  async poll(workingText = STATUS_TEXT.processing) {
    const started = Date.now();
    let delay = POLL_FIRST_DELAY_MS;
    let errorsInARow = 0;
    for (;;) {
      try {
        const body = await requestJSON(this.job.statusUrl, { cache: "no-store" }, 0);
        errorsInARow = 0;
        if (["done", "failed", "deleted", "withdrawn"].includes(body.status)) return body;
        if (body.status === "processing") this.setState("processing", workingText);
        else this.setState("queued");
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

  /** Show where the photo's life has got to: done (with the owner's controls), failed or deleted. */
  settle(body, announcement = undefined) {
    this.checkOnly = true; // from now on a retry only asks again: the photo is on its way or published
    if (body.status === "deleted") return this.withdraw("deleted", DELETED_TEXT);
    if (body.status === "withdrawn") return this.showWithdrawn(body);
    if (body.status !== "done") {
      forgetOwned(this.job.jobId); // nothing was published: nothing to own
      this.checkOnly = false;
      return this.showFailed(body);
    }
    this.showDone(body, announcement);
    // the last edit could not be made: the photo is as it was, and the page says so
    if (body.error) this.showError(body.error.message, false);
    // not awaited: the sized copies must not hold this photo's upload slot for the next photo
    this.followVariants(body).catch((error) => console.warn("PhotoVeil: variants", error));
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
    // an edit may have replaced the photo meanwhile: these would be the old version's sizes
    if (body.photoUrl === this.photoUrl) this.showVariants(body.variants);
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

  /** `announcement`: what to tell screen readers (null: nothing, for a photo merely checked again). */
  showDone(body, announcement = undefined) {
    this.hideProgress();
    this.hideError();
    const faces = faceCount(body);
    this.setState("done", "Done: ready to share");
    this.el.classList.remove("is-withdrawn"); // restored after a review
    this.photoUrl = body.photoUrl;
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
    thumb.alt = `${this.name} with ${faces === null ? "its" : faces} ${faces === 1 ? "face" : "faces"} blurred`;
    thumb.removeAttribute("srcset"); // an earlier version's sizes would win over the new src
    thumb.src = body.photoUrl;
    this.q(".variant-links").hidden = true;
    this.showMeta(faces, parseExpiry(body.expiresAt));
    // The link to share is the photo's page: it stays the same when the owner blurs more (the JPEG's does not)
    const shared = body.viewUrl ?? body.photoUrl;
    this.q(".link-input").value = shared;
    this.q(".open-link").href = shared;
    this.q(".full-link").href = body.photoUrl;
    this.q(".card-result").hidden = false;
    if (body.expiresAt) updateOwned(this.job.jobId, { expiresAt: body.expiresAt });
    this.showOwnerActions();
    if (announcement !== null) {
      announce(announcement ?? `${this.name}: ${facesText(faces).toLowerCase()}. The link is ready.`);
    }
  }

  showMeta(faces, expiry) {
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
  }

  showFailed(body) {
    this.hideProgress();
    // content_refused: moderation found content PhotoVeil does not publish; say so, not "could not blur"
    const refused = body.error.code === "content_refused";
    this.setState("failed", refused ? "Not published" : STATUS_TEXT.failed);
    const message = body.error.message || "The photo could not be processed.";
    // not_finished: every retry on our side failed and nothing was published; the photo is still on this
    // page, so Retry sends it again as a new job (any other failure is about the file: retrying cannot help)
    const canSendAgain = body.error.code === "not_finished" && this.file !== null;
    if (canSendAgain) {
      cardsByJob.delete(this.job.jobId);
      this.uploaded = false;
      this.job = null;
    }
    this.showError(message, canSendAgain);
    announce(`${this.name}: ${refused ? "not published" : "could not be blurred"}. ${message}`);
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

  showNote(message) {
    const note = this.q(".card-note");
    note.textContent = message;
    note.hidden = !message;
  }

  retry() {
    this.q(".retry-btn").hidden = true;
    schedule(this);
  }

  // -------------------------------------------------------------------------------------------
  // What the owner can do: blur more, delete now

  showOwnerActions() {
    const state = this.el.dataset.state;
    this.q(".owner-actions").hidden = !(this.token && (state === "done" || state === "withdrawn"));
    this.q(".blur-more-btn").hidden = !this.canEdit || state === "withdrawn";
  }

  /** Reports took the photo offline until PhotoVeil reviews it: no link to share; its owner may delete it. */
  showWithdrawn(body) {
    this.hideProgress();
    this.hideError();
    this.closeEditor(false);
    this.setState("withdrawn", "Offline: reported");
    const thumb = this.q(".card-thumb");
    thumb.removeAttribute("srcset");
    thumb.removeAttribute("src");
    thumb.hidden = true;
    this.el.classList.add("no-preview", "is-withdrawn");
    this.q(".card-result").hidden = false;
    this.showOwnerActions();
    this.showNote(asSentence(body.error?.message ?? "This photo has been taken offline after reports."));
  }

  /** A token from an email link for a photo already on screen. */
  adoptToken(token) {
    this.token = token;
    this.showOwnerActions();
  }

  /** DELETE or POST to this photo's owner routes; the token goes in the Authorization header, nowhere else. */
  async ownerRequest(method, path = "", body = undefined) {
    const config = await loadConfig();
    const headers = { Authorization: `Bearer ${this.token}` };
    if (body) headers["Content-Type"] = "application/json";
    const options = { method, headers, cache: "no-store", body: body && JSON.stringify(body) };
    // DELETE may be repeated safely; a POST whose answer was lost would start a second edit
    const retries = method === "DELETE" ? REQUEST_RETRIES : 0;
    return requestJSON(`${config.apiUrl}/jobs/${this.job.jobId}${path}`, options, retries);
  }

  toggleEditor() {
    if (this.editor && !this.q(".card-editor").hidden) {
      this.closeEditor(true);
      return;
    }
    this.editor ??= new RegionEditor(this.q(".card-editor"), {
      name: this.name,
      announce,
      onApply: (regions) => this.applyRegions(regions),
      onCancel: () => this.closeEditor(true),
    });
    this.hideError();
    this.showNote("");
    this.q(".blur-more-btn").setAttribute("aria-expanded", "true");
    this.editor.open(this.photoUrl);
  }

  closeEditor(focusButton) {
    this.editor?.close();
    const button = this.q(".blur-more-btn");
    button.setAttribute("aria-expanded", "false");
    if (focusButton) button.focus();
  }

  async applyRegions(regions) {
    this.editor.setBusy(true);
    try {
      await this.ownerRequest("POST", "/regions", { regions });
    } catch (error) {
      this.editor.setBusy(false);
      if (error instanceof PermanentError && CARD_REFUSALS.includes(error.code)) {
        this.closeEditor(false);
        this.ownerRefused(error, "Nothing was changed.");
      } else {
        this.editor.showError(editRefusalText(error));
      }
      return;
    }
    this.closeEditor(false);
    await this.followEdit(regions.length);
  }

  /** After an accepted edit: wait for the new version and show it, or say why the photo is as it was. */
  async followEdit(areas) {
    this.q(".owner-actions").hidden = true;
    this.setState("processing", STATUS_TEXT.editing);
    this.setProgress(null);
    this.q(".card-status").focus();
    try {
      const body = await this.poll(STATUS_TEXT.editing);
      const applied = body.status === "done" && !body.error;
      const marked = areas === 1 ? "the area you marked is" : "the areas you marked are";
      const said = applied ? `${marked} blurred. The link now shows this version.` : asSentence(body.error?.message ?? "");
      this.settle(body, `${this.name}: ${said}`);
      if (applied) this.showNote(EDITED_TEXT);
    } catch (error) {
      this.runFailed(error);
    }
  }

  async deletePhoto() {
    const button = this.q(".delete-btn");
    if (!(await confirmDelete(this.name))) {
      button.focus();
      return;
    }
    this.closeEditor(false);
    this.hideError();
    button.disabled = true;
    try {
      await this.ownerRequest("DELETE");
      this.withdraw("deleted", DELETED_TEXT);
      this.q(".card-status").focus();
    } catch (error) {
      this.ownerRefused(error, "The photo was not deleted.");
    } finally {
      button.disabled = false;
    }
  }

  /** The photo is no longer online (deleted, or gone): say so and offer nothing. */
  withdraw(state, { status, note }) {
    forgetOwned(this.job.jobId);
    this.token = null;
    this.closeEditor(false);
    this.hideProgress();
    this.hideError();
    this.setState(state, status);
    const thumb = this.q(".card-thumb");
    thumb.removeAttribute("srcset");
    thumb.removeAttribute("src");
    thumb.hidden = true;
    this.el.classList.add("no-preview");
    this.q(".card-result").hidden = true;
    this.showNote(note);
    announce(`${this.name}: ${note}`);
  }

  /** An owner request that was refused or failed, said plainly; controls that can no longer work go away. */
  ownerRefused(error, outcome) {
    const code = error instanceof PermanentError ? error.code : "";
    if (code === "job_not_found") {
      this.withdraw("gone", GONE_TEXT);
    } else if (code === "wrong_token" || code === "missing_token") {
      forgetOwned(this.job.jobId); // a token the API refuses will not work after a reload either
      this.token = null;
      this.showOwnerActions();
      this.showError(WRONG_TOKEN_TEXT, false);
    } else if (code === "too_many_edits") {
      this.canEdit = false;
      this.showOwnerActions();
      this.showError(`${asSentence(error.message)} You can still delete it.`, false);
    } else {
      this.showError(`${outcome} ${asSentence(error.message)}`, false);
    }
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

/** Ask before deleting, in a real (modal, keyboard-trapping, Escape-closing) dialog; true to delete. */
function confirmDelete(name) {
  const dialog = document.getElementById("delete-dialog");
  if (typeof dialog.showModal !== "function") {
    return Promise.resolve(window.confirm(`Delete “${name}” for good? Its link stops working.`));
  }
  dialog.querySelector(".delete-dialog-name").textContent = name;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "delete"), { once: true });
  });
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
  const cards = files.map((file) => new PhotoCard({ file, email }, staging));
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

// ---------------------------------------------------------------------------------------------
// Photos owned from before: a reload, an earlier visit, the link in the email

/** The email's link (#job=…&token=…): keep its job and token as an upload's are kept; clear the address bar. */
async function adoptLink() {
  const link = linkFromHash(window.location.hash);
  if (!link) return null;
  // first of all, the token leaves the address bar (and this entry of the history)
  window.history.replaceState(null, "", window.location.pathname + window.location.search);
  if (!link.valid) {
    showFormError("This link is incomplete. Open it again from your email, as a whole.");
    return null;
  }
  const config = await loadConfig();
  const known = readOwned(link.jobId);
  const owned = {
    jobId: link.jobId,
    statusUrl: `${config.apiUrl}/jobs/${link.jobId}`,
    token: link.token,
    name: known?.name ?? "Your photo",
    size: known?.size ?? null,
    savedAt: Date.now(),
    expiresAt: known?.expiresAt ?? null,
  };
  rememberOwned(owned);
  return owned;
}

function showOwnedCards(entries) {
  if (!entries.length) return;
  document.getElementById("results-section").hidden = false;
  const staging = document.createElement("div");
  const cards = entries.map((owned) => new PhotoCard({ owned }, staging));
  document.getElementById("results").prepend(...staging.children);
  for (const card of cards) card.run(); // only status checks: no need to queue them behind uploads
}

/** On load: a card for the email link's photo first, then one for each photo owned here from before. */
async function showOwnedPhotos() {
  let linked = null;
  try {
    linked = await adoptLink();
  } catch {
    // config.json could not be loaded: init() already says so
  }
  const owned = ownedPhotos().filter((entry) => entry.jobId !== linked?.jobId);
  showOwnedCards(linked ? [linked, ...owned] : owned);
}

/** An email link pasted into this page's address bar: the page does not reload for a new fragment. */
async function adoptLinkOnThisPage() {
  const linked = await adoptLink().catch(() => null);
  if (!linked) return;
  const card = cardsByJob.get(linked.jobId);
  if (card) card.adoptToken(linked.token);
  else showOwnedCards([linked]);
  (card ? card.el : document.getElementById("results")).scrollIntoView({ block: "nearest" });
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
  showOwnedPhotos();
  window.addEventListener("hashchange", adoptLinkOnThisPage);
  document.documentElement.classList.add("js-ready");
}

init();
