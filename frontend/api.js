// What the site's pages share about talking to PhotoVeil's API: its two kinds of failure, a JSON request
// that retries what retrying can fix, and the site's config.json. Used by the upload page (app.js) and
// the viewer page (view.js).

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

export const REQUEST_RETRIES = 3; // extra attempts after the first, for network errors, 429 and 5xx

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
// Jitter spreads retries from many browsers so they do not hit the API in lockstep.
export const backoff = (attempt) => Math.min(500 * 2 ** attempt, 4000) * (0.75 + Math.random() * 0.5);

function retryAfterMs(response) {
  const header = response.headers.get("Retry-After");
  const seconds = header ? Number(header) : NaN;
  return Number.isFinite(seconds) ? Math.min(seconds * 1000, 10000) : null;
}

/** A rate-limited message with the local time its Retry-After (seconds) ends at. */
function untilRetry(message, response) {
  const seconds = Number(response.headers.get("Retry-After"));
  if (!Number.isFinite(seconds) || seconds <= 0) return message;
  const at = new Date(Date.now() + seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return `${message} (from ${at}).`;
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
      if (response.status === 204) return null;
      if (response.ok) return await response.json();
      const { message, code } = await errorMessage(response);
      // A quota (per address or for the whole service) lasts up to a day: say until when, do not retry.
      if (code === "rate_limited") throw new PermanentError(untilRetry(message, response), code);
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
