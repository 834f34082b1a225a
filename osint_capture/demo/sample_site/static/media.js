// Downloads the large media body in full before declaring the page done, so a
// capture has to wait for (and record) a big response. Counts bytes from the
// stream instead of buffering the whole body in the renderer.
"use strict";

(async function () {
  const status = document.getElementById("media-status");
  const url = status.dataset.mediaUrl;
  document.title = "Loading media…";
  try {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    let total = 0;
    if (response.body && response.body.getReader) {
      const reader = response.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.byteLength;
      }
    } else {
      total = (await response.arrayBuffer()).byteLength;
    }
    document.title = `Media loaded: ${total} bytes`;
    status.textContent = `Media loaded: ${total} bytes`;
    document.documentElement.dataset.mediaBytes = String(total);
  } catch (err) {
    document.title = `Media failed: ${err.message}`;
    status.textContent = `Media failed: ${err.message}`;
  }
})();
