// The page of `ocr serve`: send the chosen file to v1/read and draw the boxes of the JSON over the image.
// No library and nothing from elsewhere: it works offline, under the server's Content-Security-Policy.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
let shownUrl = null;
let current = null;  // the file shown: read again when an option changes

function setStatus(text) { $("status").textContent = text; }

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

function pointsOf(quad) { return quad.map(([x, y]) => `${x},${y}`).join(" "); }

function polygon(quad, className, title) {
  const shape = document.createElementNS(SVG, "polygon");
  shape.setAttribute("points", pointsOf(quad));
  shape.setAttribute("class", className);
  if (title) {
    const tip = document.createElementNS(SVG, "title");
    tip.textContent = title;
    shape.appendChild(tip);
    shape.dataset.text = title.split("\n")[0];
  }
  return shape;
}

// One record of `ocr recognize --json` (an image), or {path, text, pages: [records]} (a PDF).
function render(body, isImage) {
  const records = body.pages || [body];
  const overlay = $("overlay");
  overlay.replaceChildren();
  $("text").textContent = body.text;
  $("figure").classList.toggle("hidden-image", !isImage);
  let words = 0;
  if (isImage) {
    const page = records[0];
    overlay.setAttribute("viewBox", `0 0 ${page.width} ${page.height}`);
    for (const line of page.lines || []) {
      if (!line.text) continue;
      overlay.appendChild(polygon(line.quad, "line", null));
      const items = line.words && line.words.length ? line.words : [line];
      for (const word of items) {
        overlay.appendChild(polygon(word.quad, "box", `${word.text}\nconfidence ${word.confidence}`));
        words += 1;
      }
    }
  }
  const pages = body.pages ? `${body.pages.length} page(s), ` : "";
  setStatus(`${pages}${words ? words + " word(s) drawn" : "read"}` + (body.errors ? `; ${body.errors.length} page error(s)` : ""));
  if (body.errors) showError(body.errors.join("\n"));
}

async function read(file) {
  if (!file) return;
  current = file;
  showError("");
  const isImage = file.type.startsWith("image/");
  if (shownUrl) URL.revokeObjectURL(shownUrl);
  shownUrl = isImage ? URL.createObjectURL(file) : null;
  if (shownUrl) $("image").src = shownUrl; else $("image").removeAttribute("src");
  $("overlay").replaceChildren();
  $("text").textContent = "";
  $("result").hidden = false;
  setStatus(`Reading ${file.name}…`);
  const params = new URLSearchParams({layout: $("layout").value});
  if ($("dictionary").value) params.set("dictionary", $("dictionary").value);
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const response = await fetch(`v1/read?${params}`, {method: "POST", body: form});
    const body = await response.json().catch(() => ({error: `HTTP ${response.status}`}));
    if (!response.ok) {
      setStatus("");
      showError(body.error || `HTTP ${response.status}`);
      return;
    }
    render(body, isImage);
  } catch (e) {
    setStatus("");
    showError(`The server did not answer (${e.message}).`);
  }
}

function setUp() {
  const drop = $("drop");
  $("file").addEventListener("change", (event) => read(event.target.files[0]));
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    read(event.dataTransfer.files[0]);
  });
  for (const id of ["layout", "dictionary"]) {
    $(id).addEventListener("change", () => read(current));
  }
}

setUp();
