// How the site's pages say things: sizes, dates, face counts, server messages. Pure functions, shared by
// the upload page (app.js) and the viewer page (view.js).

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
