// Upload page enhancements: preview, drag and drop, paste, examples, classification
// without a page reload, and the explanation heatmap over the image with an opacity slider. Without JavaScript the form posts to the server and the result
// page is rendered there, so everything here is optional.
"use strict";

(() => {
  const form = document.getElementById("upload-form");
  // With AUTH=keys the form asks for an API key; it is kept for this tab only.
  const keyInput = document.getElementById("api-key");
  if (keyInput && !keyInput.value) keyInput.value = sessionStorage.getItem("h5serve-api-key") || "";
  if (!form || !window.fetch || !window.DataTransfer) return;

  const input = document.getElementById("image-input");
  const message = document.getElementById("form-message");
  const preview = document.getElementById("preview");
  const dropZone = document.getElementById("drop-zone");
  const button = document.getElementById("submit-button");
  const result = document.getElementById("result");
  const maxBytes = Number(form.dataset.maxBytes);
  const maxPixels = Number(form.dataset.maxPixels);
  const lowConfidence = Number(form.dataset.lowConfidence);
  const explainToggle = document.getElementById("explain-toggle");
  const explanationBox = document.getElementById("explanation");
  const heatmapCanvas = document.getElementById("heatmap");
  const opacity = document.getElementById("opacity");
  const colors = JSON.parse(form.dataset.colors);  // app.runtime.overlay.COLOR_STOPS
  // The server's way of writing sizes (app.config.mebibytes): 15728640 -> "15 MiB".
  const mebibytes = (bytes) => `${(bytes / 1048576).toFixed(1).replace(/\.0$/, "")} MiB`;
  let previewUrl = null;
  document.documentElement.classList.add("js");  // the drop zone replaces the file button

  // An error replaces the previous result: an old answer must not look like this one's.
  const showError = (text) => {
    message.textContent = text;
    if (text) result.hidden = true;
  };

  // The same limits the server enforces, checked before anything is sent. The browser
  // decodes the file once (not TIFF: browsers cannot) to catch broken files early.
  async function problemWith(file) {
    if (!file) return "Choose an image first.";
    if (file.type && !file.type.startsWith("image/")) {
      return `"${file.name}" is not an image (${file.type}): choose a PNG, JPEG, GIF, WebP, BMP or TIFF file.`;
    }
    if (file.size === 0) return `"${file.name}" is empty.`;
    if (file.size > maxBytes) {
      return `"${file.name}" is ${mebibytes(file.size)}; the limit is ${mebibytes(maxBytes)}.`;
    }
    if (file.type === "image/tiff" || !window.createImageBitmap) return null;
    try {
      const bitmap = await createImageBitmap(file);
      const pixels = bitmap.width * bitmap.height;
      bitmap.close();
      if (pixels > maxPixels) {
        return `"${file.name}" has ${pixels.toLocaleString()} pixels; the limit is ${maxPixels.toLocaleString()}.`;
      }
    } catch {
      return `"${file.name}" could not be read as an image: it may be truncated or corrupt.`;
    }
    return null;
  }

  function showPreview(file) {
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(file);
    preview.src = previewUrl;
    preview.alt = `Preview of ${file.name || "the chosen image"}`;
    preview.hidden = false;
  }

  // A file from a drop, a paste or an example also goes into the input element.
  function choose(file) {
    const transfer = new DataTransfer();
    transfer.items.add(file);
    input.files = transfer.files;
    return chosen();
  }

  async function chosen() {
    const file = input.files[0];
    const problem = await problemWith(file);
    showError(problem || "");
    if (problem) {
      preview.hidden = true;
    } else {
      showPreview(file);
    }
    return !problem;
  }

  function bar(label, probability) {
    const percent = (probability * 100).toFixed(1);
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.className = "bar-label";
    name.textContent = label;
    const meter = document.createElement("span");
    meter.className = "bar";
    meter.setAttribute("role", "meter");
    meter.setAttribute("aria-valuemin", "0");
    meter.setAttribute("aria-valuemax", "100");
    meter.setAttribute("aria-valuenow", percent);
    meter.setAttribute("aria-label", label);
    const fill = document.createElement("span");
    fill.style.width = `${(probability * 100).toFixed(2)}%`;
    meter.append(fill);
    const value = document.createElement("span");
    value.className = "bar-value";
    value.textContent = `${percent} %`;
    item.append(name, meter, value);
    return item;
  }

  // The colour of one heatmap value: the server's scale, interpolated the same way.
  function heatColor(value) {
    const upper = colors.findIndex(([stop]) => stop >= value);
    if (upper === 0) return colors[0][1];
    if (upper === -1) return colors[colors.length - 1][1];
    const [[low, from], [high, to]] = [colors[upper - 1], colors[upper]];
    const t = (value - low) / (high - low);
    return from.map((c, i) => Math.round(c + (to[i] - c) * t));
  }

  const methodNames = { "grad-cam": "Grad-CAM", saliency: "Gradient × input saliency" };

  // The heatmap at the model's resolution, stretched over the user's own image.
  function showExplanation(explanation) {
    const { width, height, heatmap } = explanation;
    heatmapCanvas.width = width;
    heatmapCanvas.height = height;
    const context = heatmapCanvas.getContext("2d");
    const image = context.createImageData(width, height);
    heatmap.forEach((row, y) => row.forEach((value, x) => {
      image.data.set([...heatColor(value), 255], 4 * (y * width + x));
    }));
    context.putImageData(image, 0, 0);
    heatmapCanvas.style.opacity = String(opacity.value / 100);
    const overlayImage = document.getElementById("overlay-image");
    overlayImage.src = previewUrl;
    const layer = explanation.layer ? ` on layer ${explanation.layer}` : "";
    document.getElementById("explanation-caption").textContent =
      `${methodNames[explanation.method] || explanation.method}${layer}, for “${explanation.label}”.`;
    explanationBox.hidden = false;
  }

  opacity.addEventListener("input", () => {
    heatmapCanvas.style.opacity = String(opacity.value / 100);
  });

  function render(body, elapsedMs) {
    document.getElementById("result-image").src = previewUrl;
    document.getElementById("top-label").textContent = body.most_probable_label;
    document.getElementById("latency").textContent = `${elapsedMs.toFixed(1)} ms round trip`;
    const ranked = [...body.predictions].sort((a, b) => b.probability - a.probability);
    document.getElementById("bars").replaceChildren(...ranked.map((p) => bar(p.label, p.probability)));
    document.getElementById("low-confidence").hidden = ranked[0].probability >= lowConfidence;
    if (body.explanation) {
      showExplanation(body.explanation);
    } else {
      explanationBox.hidden = true;
    }
    result.hidden = false;
    document.getElementById("result-heading").focus();
  }

  // Sends the chosen file; callers have already checked it with chosen() or choose().
  async function classify() {
    const file = input.files[0];
    const body = new FormData();
    body.append("image", file, file.name || "image");
    const explain = explainToggle.checked;
    button.disabled = true;
    button.textContent = explain ? "Explaining…" : "Classifying…";
    const started = performance.now();
    try {
      const headers = { Accept: "application/json" };
      if (keyInput?.value) {
        headers["X-API-Key"] = keyInput.value;
        sessionStorage.setItem("h5serve-api-key", keyInput.value);  // this tab only
      }
      const url = explain ? form.dataset.explainApi : form.dataset.api;
      const response = await fetch(url, { method: "POST", body, headers });
      const answer = await response.json().catch(() => null);
      if (!response.ok || !answer || !answer.success) {
        showError(answer?.error?.message || `The server answered ${response.status}; try again.`);
        return;
      }
      render(answer, performance.now() - started);
    } catch {
      showError("The server could not be reached; check the connection and try again.");
    } finally {
      button.disabled = false;
      button.textContent = "Classify";
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    chosen().then((ok) => ok && classify());
  });
  input.addEventListener("change", chosen);

  for (const type of ["dragenter", "dragover"]) {
    dropZone.addEventListener(type, (event) => {
      event.preventDefault();
      dropZone.classList.add("dragging");
    });
  }
  dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
  dropZone.addEventListener("drop", (event) => {
    event.preventDefault();
    dropZone.classList.remove("dragging");
    const file = event.dataTransfer?.files[0];
    if (file) choose(file).then((ok) => ok && classify());
  });

  document.addEventListener("paste", (event) => {
    const file = [...(event.clipboardData?.files || [])][0];
    if (!file) return;
    event.preventDefault();
    choose(file).then((ok) => ok && classify());
  });

  for (const example of document.querySelectorAll("button.example")) {
    example.addEventListener("click", async () => {
      const response = await fetch(example.dataset.src);
      const blob = await response.blob();
      const name = example.dataset.src.split("/").pop();
      if (await choose(new File([blob], name, { type: blob.type }))) classify();
    });
  }
})();
