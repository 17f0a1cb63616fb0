// The photos this browser may still change or delete, with their owner tokens: kept in localStorage, one
// key per job, so that a reload (or the link from the email) still offers "Blur more" and "Delete now".
// A token leaves the browser only in the Authorization header of an owner request; it is never logged.

const PREFIX = "photoveil.owned.";
const JOB_ID = /^[0-9a-f]{32}$/;
// A photo not done yet has no expiry date; one that never gets one is forgotten after this long.
const UNFINISHED_LIFETIME_MS = 2 * 24 * 60 * 60 * 1000;

/** localStorage, or null where the browser refuses it (some private modes, storage disabled). */
function store() {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

function isOwnedPhoto(entry) {
  return (
    entry !== null &&
    typeof entry === "object" &&
    JOB_ID.test(entry.jobId) &&
    typeof entry.token === "string" &&
    entry.token !== "" &&
    typeof entry.statusUrl === "string" &&
    typeof entry.name === "string" &&
    Number.isFinite(entry.savedAt)
  );
}

function isExpired(entry, now) {
  const until = entry.expiresAt ? Date.parse(entry.expiresAt) : entry.savedAt + UNFINISHED_LIFETIME_MS;
  return !(until > now);
}

/**
 * Remember a photo this browser owns: {jobId, statusUrl, token, name, size, savedAt, expiresAt}.
 * Without storage (or with it full) nothing is kept: the controls still work until the page is closed.
 */
export function rememberOwned(entry) {
  try {
    store()?.setItem(PREFIX + entry.jobId, JSON.stringify(entry));
  } catch {
    // quota or a refused write: only persistence across reloads is lost
  }
}

export function readOwned(jobId) {
  try {
    const entry = JSON.parse(store()?.getItem(PREFIX + jobId) ?? "null");
    return isOwnedPhoto(entry) ? entry : null;
  } catch {
    return null;
  }
}

export function updateOwned(jobId, changes) {
  const entry = readOwned(jobId);
  if (entry) rememberOwned({ ...entry, ...changes });
}

export function forgetOwned(jobId) {
  try {
    store()?.removeItem(PREFIX + jobId);
  } catch {
    // nothing to forget where nothing could be kept
  }
}

/** Every photo still owned here, newest first. Expired or unreadable entries are dropped on the way. */
export function ownedPhotos(now = Date.now()) {
  const storage = store();
  if (!storage) return [];
  const keys = [];
  for (let i = 0; i < storage.length; i += 1) {
    const key = storage.key(i);
    if (key && key.startsWith(PREFIX)) keys.push(key);
  }
  const owned = [];
  for (const key of keys) {
    const entry = readOwned(key.slice(PREFIX.length));
    if (entry && entry.jobId === key.slice(PREFIX.length) && !isExpired(entry, now)) owned.push(entry);
    else forgetOwned(key.slice(PREFIX.length));
  }
  return owned.sort((a, b) => b.savedAt - a.savedAt);
}

/** The job id and token of an email link (`#job=<jobId>&token=<token>`), or null when the hash is not one. */
export function linkFromHash(hash) {
  const params = new URLSearchParams(String(hash).replace(/^#/, ""));
  if (!params.has("job") && !params.has("token")) return null;
  const jobId = params.get("job") || "";
  const token = params.get("token") || "";
  return { jobId, token, valid: JOB_ID.test(jobId) && /^[A-Za-z0-9_-]{16,}$/.test(token) };
}
