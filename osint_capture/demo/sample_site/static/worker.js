// Runs in a dedicated worker: its fetch is a request the page's frame never makes.
fetch('/api/from-worker').then((r) => r.text()).then((t) => postMessage(t));
