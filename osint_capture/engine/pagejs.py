"""The JavaScript the capture runs in the page: access signals, scrolling, metadata.

Each is a function expression handed to Playwright's ``page.evaluate``; none of them
changes the page's content.
"""

from __future__ import annotations

__all__ = ["AT_BOTTOM_JS", "METADATA_JS", "SCROLL_JS", "SIGNALS_JS"]

SIGNALS_JS = """
() => {
  const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  const pw = [...document.querySelectorAll('input[type=password]')].filter(visible);
  const forms = pw.map(p => (p.form ? p.form.innerText : '')).join(' ').slice(0, 500);
  const text = document.body ? document.body.innerText : '';
  const markers = [];
  const q = (sel, name) => { if (document.querySelector(sel)) markers.push(name); };
  // Visible challenge widgets only: an invisible score script (reCAPTCHA v3) on an
  // otherwise public page is not a barrier.
  q('.g-recaptcha, iframe[src*="recaptcha/api2/anchor"], iframe[title="reCAPTCHA"]', 'reCAPTCHA');
  q('.h-captcha, iframe[src*="hcaptcha.com"]', 'hCaptcha');
  q('.cf-turnstile, iframe[src*="challenges.cloudflare"]', 'Turnstile');
  q('#challenge-form, #challenge-stage, #cf-challenge-running', 'challenge form');
  const low = (document.title + ' ' + text.slice(0, 3000)).toLowerCase();
  for (const phrase of ['verify you are human', 'are you a robot', 'checking your browser',
                        'complete the security check', 'prove you are human']) {
    if (low.includes(phrase)) markers.push('"' + phrase + '"');
  }
  return {title: document.title, passwordFields: pw.length, textLength: text.trim().length,
          formText: forms, markers};
}
"""

SCROLL_JS = """
async ([maxSteps, pause]) => {
  const sleep = (ms) => new Promise(r => setTimeout(r, ms));
  let steps = 0;
  while (steps < maxSteps) {
    const before = window.scrollY;
    window.scrollBy(0, Math.max(200, Math.floor(window.innerHeight * 0.9)));
    steps += 1;
    await sleep(pause);
    const atBottom =
      window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 2;
    if (atBottom || window.scrollY === before) break;
  }
  return document.documentElement.scrollHeight;
}
"""

AT_BOTTOM_JS = "window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 2"

METADATA_JS = """
() => {
  const meta = {};
  for (const m of document.querySelectorAll('meta[property], meta[name]')) {
    const key = (m.getAttribute('property') || m.getAttribute('name') || '').toLowerCase();
    if (!key) continue;
    if (key.startsWith('og:') || key.startsWith('article:') || key.startsWith('twitter:') ||
        ['author', 'description', 'robots', 'googlebot', 'date', 'keywords'].includes(key)) {
      (meta[key] = meta[key] || []).push(m.getAttribute('content') || '');
    }
  }
  const jsonld = [];
  for (const s of document.querySelectorAll('script[type="application/ld+json"]')) {
    try { jsonld.push(JSON.parse(s.textContent)); } catch (e) { jsonld.push({unparsable: true}); }
  }
  const canon = document.querySelector('link[rel=canonical]');
  return {title: document.title, meta, jsonld, canonical: canon ? canon.href : null,
          lang: document.documentElement.lang || null};
}
"""
