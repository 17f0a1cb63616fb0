// "Blur more": mark areas of a published photo to blur, drawn with a mouse, a finger or a pen (pointer
// events) or placed with the keyboard. An area is kept as fractions of the full photo ({x, y, width,
// height}, 0 to 1), which is what POST /jobs/{jobId}/regions takes whatever size the photo is shown at.

export const MAX_REGIONS = 20; // the API's limit per edit
// A drag smaller than this (of a side) is taken as a tap, not an area; the API's own floor is 0.5 %.
export const MIN_SIDE = 0.01;
export const KEY_STEP = 0.02; // one arrow key press moves or resizes an area by 2 % of the photo
const NEW_AREA = { x: 0.35, y: 0.35, width: 0.3, height: 0.3 };
const DIRECTIONS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

const clamp = (value, low, high) => Math.min(Math.max(value, low), high);
const percent = (fraction) => `${Math.round(fraction * 100)}%`;

// ---------------------------------------------------------------------------------------------
// Geometry (pure: exported so the browser test can exercise it directly)

/** The area between two points (fractions of the photo), whichever way the drag went. */
export function areaBetween(a, b) {
  const [x1, x2] = [clamp(a.x, 0, 1), clamp(b.x, 0, 1)].sort((p, q) => p - q);
  const [y1, y2] = [clamp(a.y, 0, 1), clamp(b.y, 0, 1)].sort((p, q) => p - q);
  return { x: x1, y: y1, width: x2 - x1, height: y2 - y1 };
}

/** `area` moved by (dx, dy), kept whole inside the photo. */
export function movedArea(area, dx, dy) {
  return {
    ...area,
    x: clamp(area.x + dx, 0, 1 - area.width),
    y: clamp(area.y + dy, 0, 1 - area.height),
  };
}

/** `area` with its right and bottom edges moved by (dx, dy): never below MIN_SIDE, never off the photo. */
export function resizedArea(area, dx, dy) {
  return {
    ...area,
    width: clamp(area.width + dx, MIN_SIDE, 1 - area.x),
    height: clamp(area.height + dy, MIN_SIDE, 1 - area.y),
  };
}

/** An area as the API takes it: four decimals, still inside the photo. */
export function regionForApi(area) {
  const round = (value) => Math.round(value * 10000) / 10000;
  const x = clamp(round(area.x), 0, 1);
  const y = clamp(round(area.y), 0, 1);
  const width = Math.min(round(area.width), round(1 - x));
  return { x, y, width, height: Math.min(round(area.height), round(1 - y)) };
}

export function describeArea(area, number) {
  return (
    `Area ${number}: ${percent(area.x)} from the left, ${percent(area.y)} from the top, ` +
    `${percent(area.width)} wide, ${percent(area.height)} high`
  );
}

// ---------------------------------------------------------------------------------------------
// The editor

/**
 * The drawing surface of one card (the `.card-editor` element of the card template).
 * `onApply(regions)` receives the areas as the API takes them; `announce(text)` speaks to screen readers.
 */
export class RegionEditor {
  constructor(root, { name, onApply, onCancel, announce }) {
    this.root = root;
    this.name = name;
    this.onApply = onApply;
    this.onCancel = onCancel;
    this.announce = announce;
    this.areas = []; // {x, y, width, height, el}
    this.gesture = null;
    this.q = (selector) => root.querySelector(selector);
    this.stage = this.q(".editor-stage");
    this.photo = this.q(".editor-photo");
    this.photo.addEventListener("load", () => this.fitStage());
    this.photo.addEventListener("error", () => {
      this.showError("The photo could not be loaded. Cancel, then try again.");
    });
    this.photo.addEventListener("dragstart", (event) => event.preventDefault());
    this.stage.addEventListener("pointerdown", (event) => this.pointerDown(event));
    this.stage.addEventListener("pointermove", (event) => this.pointerMove(event));
    this.stage.addEventListener("pointerup", () => this.pointerUp());
    this.stage.addEventListener("pointercancel", () => this.pointerUp());
    this.q(".add-area-btn").addEventListener("click", () => this.addFromKeyboard());
    this.q(".apply-btn").addEventListener("click", () => this.apply());
    this.q(".cancel-edit-btn").addEventListener("click", () => this.onCancel());
  }

  /** Show the full published photo (never a cropped variant: the fractions are of the full photo). */
  open(photoUrl) {
    this.clear();
    this.setBusy(false);
    this.showError("");
    this.photo.alt = `${this.name}, as published: drag over it to mark an area to blur`;
    this.root.hidden = false;
    this.q(".add-area-btn").focus({ preventScroll: true });
    if (this.photo.getAttribute("src") !== photoUrl) {
      this.scrollOnLoad = true; // once the photo's proportions are known
      this.photo.src = photoUrl;
    } else this.fitStage();
    this.stage.scrollIntoView({ block: "nearest" }); // the photo is what is drawn on: all of it in view
  }

  close() {
    this.gesture = null;
    this.clear();
    this.root.hidden = true;
  }

  clear() {
    for (const area of this.areas) area.el.remove();
    this.areas = [];
    this.update();
  }

  /** The stage takes the photo's proportions, so a fraction of the stage is the same fraction of the photo. */
  fitStage() {
    const { naturalWidth: width, naturalHeight: height } = this.photo;
    if (width && height) this.stage.style.setProperty("--photo-ratio", String(width / height));
    if (this.scrollOnLoad && !this.root.hidden) this.stage.scrollIntoView({ block: "nearest" });
    this.scrollOnLoad = false;
  }

  setBusy(busy) {
    this.busy = busy;
    this.root.setAttribute("aria-busy", String(busy));
    this.q(".apply-btn").textContent = busy ? "Sending…" : "Apply";
    this.update();
  }

  showError(message) {
    const error = this.q(".editor-error");
    error.textContent = message;
    error.hidden = !message;
  }

  apply() {
    if (!this.areas.length || this.busy) return;
    this.showError("");
    this.onApply(this.areas.map(regionForApi));
  }

  addFromKeyboard() {
    if (this.areas.length >= MAX_REGIONS) return;
    // each new area a little lower-right of the last, so they do not hide each other
    const offset = (this.areas.length % 5) * 0.04;
    const area = this.add(movedArea(NEW_AREA, offset, offset));
    area.el.focus();
    const keys = "Arrow keys move it, Shift and arrow keys resize it.";
    this.announce(`${describeArea(area, this.areas.length)} added. ${keys}`);
  }

  add(geometry) {
    const el = document.getElementById("area-template").content.firstElementChild.cloneNode(true);
    el.setAttribute("aria-describedby", this.q(".editor-help").id);
    const area = { ...geometry, el };
    el.querySelector(".area-remove").addEventListener("click", () => this.remove(area, true));
    el.addEventListener("keydown", (event) => this.areaKey(event, area));
    this.stage.append(el);
    this.areas.push(area);
    this.update();
    return area;
  }

  /** Remove an area; with `moveFocus`, focus goes to a neighbour (or "Add an area"), never to nothing. */
  remove(area, moveFocus) {
    const index = this.areas.indexOf(area);
    if (index < 0) return;
    this.areas.splice(index, 1);
    area.el.remove();
    this.update();
    if (!moveFocus) return;
    const neighbour = this.areas[Math.min(index, this.areas.length - 1)];
    (neighbour ? neighbour.el : this.q(".add-area-btn")).focus();
    this.announce(`Area removed. ${this.countText()}`);
  }

  areaKey(event, area) {
    if (event.key === "Delete" || event.key === "Backspace") {
      event.preventDefault();
      this.remove(area, true);
      return;
    }
    const direction = DIRECTIONS[event.key];
    if (!direction || event.target !== area.el) return;
    event.preventDefault(); // the arrows move the area, not the page
    const [dx, dy] = direction.map((d) => d * KEY_STEP);
    Object.assign(area, event.shiftKey ? resizedArea(area, dx, dy) : movedArea(area, dx, dy));
    this.render(area);
    this.announce(describeArea(area, this.areas.indexOf(area) + 1));
  }

  pointAt(event) {
    const box = this.stage.getBoundingClientRect();
    return {
      x: clamp((event.clientX - box.left) / box.width, 0, 1),
      y: clamp((event.clientY - box.top) / box.height, 0, 1),
    };
  }

  pointerDown(event) {
    if (event.button !== 0 || this.busy || event.target.closest(".area-remove")) return;
    const start = this.pointAt(event);
    const el = event.target.closest(".area");
    const area = el && this.areas.find((candidate) => candidate.el === el);
    if (area) {
      const kind = event.target.closest(".area-handle") ? "resize" : "move";
      this.gesture = { kind, area, start, from: { ...area } };
      el.focus({ preventScroll: true });
    } else if (this.areas.length < MAX_REGIONS) {
      this.gesture = { kind: "draw", area: this.add({ ...start, width: 0, height: 0 }), start };
    } else {
      this.showError(`At most ${MAX_REGIONS} areas in one edit: apply these first.`);
      return;
    }
    this.stage.setPointerCapture(event.pointerId);
    event.preventDefault(); // no text selection, no image drag, no scrolling under a finger
  }

  pointerMove(event) {
    const gesture = this.gesture;
    if (!gesture) return;
    const point = this.pointAt(event);
    const [dx, dy] = [point.x - gesture.start.x, point.y - gesture.start.y];
    if (gesture.kind === "draw") Object.assign(gesture.area, areaBetween(gesture.start, point));
    else if (gesture.kind === "move") Object.assign(gesture.area, movedArea(gesture.from, dx, dy));
    else Object.assign(gesture.area, resizedArea(gesture.from, dx, dy));
    this.render(gesture.area);
  }

  pointerUp() {
    const gesture = this.gesture;
    this.gesture = null;
    if (!gesture) return;
    const { area } = gesture;
    if (gesture.kind === "draw" && (area.width < MIN_SIDE || area.height < MIN_SIDE)) {
      this.remove(area, false); // a tap or a slip, not an area
      return;
    }
    this.update();
    this.announce(`${describeArea(area, this.areas.indexOf(area) + 1)}. ${this.countText()}`);
  }

  render(area) {
    const { style } = area.el;
    style.left = `${area.x * 100}%`;
    style.top = `${area.y * 100}%`;
    style.width = `${area.width * 100}%`;
    style.height = `${area.height * 100}%`;
    area.el.setAttribute("aria-label", describeArea(area, this.areas.indexOf(area) + 1));
  }

  countText() {
    const n = this.areas.length;
    if (n === 0) return "No areas marked yet.";
    return n === 1 ? "1 area marked." : `${n} areas marked.`;
  }

  /** Names, numbers and buttons after any change of the set of areas. */
  update() {
    this.areas.forEach((area, index) => {
      this.render(area);
      area.el.querySelector(".area-remove").setAttribute("aria-label", `Remove area ${index + 1}`);
    });
    this.q(".editor-count").textContent =
      this.areas.length >= MAX_REGIONS ? `${this.countText()} That is the most one edit takes.` : this.countText();
    this.q(".add-area-btn").disabled = this.busy || this.areas.length >= MAX_REGIONS;
    // while sending, Apply keeps the focus (a disabled button would drop it) and only ignores presses
    const apply = this.q(".apply-btn");
    apply.disabled = this.areas.length === 0;
    apply.setAttribute("aria-disabled", String(Boolean(this.busy)));
  }
}
