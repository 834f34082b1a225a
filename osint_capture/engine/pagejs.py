"""The JavaScript the capture runs in the page: access signals, scrolling, metadata.

Each is a function expression run in an isolated world (:meth:`PageRun.evaluate`): it
sees the page's DOM but none of the page's scripts, so a page that overrides
``JSON.parse`` or ``querySelectorAll`` changes nothing of what is read. None of them
changes the page's content (the screenshot's preparation moves finite animations to
their end, which stays, stops endless ones and hides a text caret, which it undoes once
the screenshot is taken).
"""

from __future__ import annotations

__all__ = [
    "AT_BOTTOM_JS",
    "HEIGHT_JS",
    "METADATA_JS",
    "METADATA_LIMITS",
    "SCROLL_JS",
    "SHOT_PREPARE_JS",
    "SHOT_UNDO_JS",
    "SIGNALS_JS",
    "STILL_JS",
]

SIGNALS_JS = """
() => {
  // Read in an isolated world: the page's scripts cannot change what these DOM calls
  // answer. Lengths are of the text a visitor sees (innerText), trimmed.
  const root = document.body || document.documentElement;
  const lengths = new Map();
  const textLength = (el) => {
    if (!lengths.has(el)) {
      lengths.set(el, typeof el.innerText === 'string' ? el.innerText.trim().length : 0);
    }
    return lengths.get(el);
  };
  const total = root ? textLength(root) : 0;
  // Rendered at all: only then is an element's text part of the page's innerText.
  const rendered = (el) => (el.checkVisibility ? el.checkVisibility()
                                               : el.getClientRects().length > 0);
  // Shown to a visitor: rendered, not transparent or hidden, with a size, and not
  // parked above or left of the page where no scrolling reaches it.
  const shown = (el) => {
    if (el.checkVisibility
        ? !el.checkVisibility({opacityProperty: true, visibilityProperty: true})
        : !el.getClientRects().length) return false;
    const r = el.getBoundingClientRect();
    return (r.width > 0 || r.height > 0) && r.right + window.scrollX > 0 &&
      r.bottom + window.scrollY > 0;
  };
  // The site's chrome, as browsers tell screen readers (HTML-AAM): a header or footer
  // is the site's only outside an article, aside, main, nav or section; an aside is a
  // sidebar only outside an article, aside, nav or section.
  const ROLES = new Map([['banner', 'header'], ['navigation', 'navigation'],
                         ['complementary', 'sidebar'], ['contentinfo', 'footer']]);
  const TAGS = new Map([['header', 'header'], ['footer', 'footer'], ['aside', 'sidebar'],
                        ['nav', 'navigation']]);
  const SCOPES = new Map([['header', 'article, aside, main, nav, section'],
                          ['footer', 'article, aside, main, nav, section'],
                          ['sidebar', 'article, aside, nav, section']]);
  const chromeLabel = (el) => {
    const role = ROLES.get((el.getAttribute('role') || '').trim().toLowerCase());
    if (role) return role;
    const label = TAGS.get(el.localName);
    if (!label) return null;
    const scope = SCOPES.get(label);
    return scope && el.parentElement && el.parentElement.closest(scope) ? null : label;
  };
  const placeOf = (el) => {
    for (let a = el; a; a = a.parentElement) {
      const label = chromeLabel(a);
      if (label) return label;
    }
    return 'main content';
  };
  const chrome = [...document.querySelectorAll(
    'header, footer, aside, nav, [role=banner], [role=navigation], [role=complementary], ' +
    '[role=contentinfo]')].filter(chromeLabel);
  // The page's text outside `parts`: each counted once, however they nest (a form in a
  // sidebar, two password fields in one form).
  const textOutside = (parts) => {
    const set = new Set(parts.filter(rendered));
    let taken = 0;
    for (const el of set) {
      let nested = false;
      for (let a = el.parentElement; a && !nested; a = a.parentElement) nested = set.has(a);
      if (!nested) taken += textLength(el);
    }
    return Math.max(0, total - taken);
  };
  // A password field or widget stands for its form (or dialog); without one, for itself.
  const boxOf = (el) => (el.form || el.closest('form, [role=form], [role=dialog], dialog') || el);

  const passwordBoxes = new Map();
  for (const field of document.querySelectorAll('input[type=password]')) {
    if (!shown(field)) continue;
    const box = boxOf(field);
    passwordBoxes.set(box, (passwordBoxes.get(box) || 0) + 1);
  }
  const WIDGETS = [
    ['reCAPTCHA', '.g-recaptcha, iframe[src*="/recaptcha/api2/anchor"], ' +
                  'iframe[src*="/recaptcha/enterprise/anchor"], iframe[title="reCAPTCHA"]'],
    ['hCaptcha', '.h-captcha, iframe[src*="hcaptcha.com"]'],
    ['Turnstile', '.cf-turnstile, iframe[src*="challenges.cloudflare.com"]'],
  ];
  // An invisible widget (reCAPTCHA v2 invisible: data-size=invisible, bound to the
  // form's button, or its corner badge) asks nothing of a visitor until the form is
  // sent, which a capture never does.
  const invisible = (el) => el.matches('button, input') ||
    !!el.closest('[data-size=invisible], .grecaptcha-badge') ||
    (el.getAttribute('src') || '').includes('size=invisible');
  const widgetBoxes = new Map();
  for (const [kind, selector] of WIDGETS) {
    for (const el of document.querySelectorAll(selector)) {
      if (invisible(el) || !shown(el)) continue;
      const box = boxOf(el);
      if (!widgetBoxes.has(box)) widgetBoxes.set(box, new Set());
      widgetBoxes.get(box).add(kind);
    }
  }
  const markers = ['challenge-form', 'challenge-stage', 'challenge-running',
                   'cf-challenge-running', 'cf-please-wait']
    .filter(id => document.getElementById(id));
  return {
    // An HTML page committed but with nothing of its body parsed yet (read the moment it
    // committed, or its head waits for a script that does not come): there is nothing
    // to judge, which is no sign of a public page. XML and SVG never have a body.
    unparsed: !document.body && document.readyState === 'loading' &&
      (!document.documentElement ||
       document.documentElement.namespaceURI === 'http://www.w3.org/1999/xhtml'),
    title: document.title || '',
    textLength: total,
    ownTextLength: textOutside(chrome),
    passwordForms: [...passwordBoxes].map(([box, fields]) => ({place: placeOf(box), fields})),
    besidePasswordForms: textOutside([...chrome, ...passwordBoxes.keys()]),
    widgets: [...widgetBoxes].flatMap(([box, kinds]) =>
      [...kinds].map(kind => ({kind, place: placeOf(box)}))),
    besideChallenges: textOutside([...chrome, ...widgetBoxes.keys()]),
    markers,
    textSample: root && typeof root.innerText === 'string' ? root.innerText.slice(0, 3000) : '',
  };
}
"""

SCROLL_JS = """
async ([maxSteps, pause]) => {
  // One step per rendered frame: two animation frames mean the page has been laid out
  // and painted at the new position, so scroll handlers and intersection observers
  // (lazy images, "load more") have run. A page whose frames stall waits ``pause`` ms.
  const sleep = (ms) => new Promise(r => setTimeout(r, ms));
  const frames = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  let steps = 0;
  while (steps < maxSteps) {
    const before = window.scrollY;
    window.scrollBy(0, Math.max(200, Math.floor(window.innerHeight * 0.9)));
    steps += 1;
    await Promise.race([frames(), sleep(pause)]);
    const atBottom =
      window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 2;
    if (atBottom || window.scrollY === before) break;
  }
  return document.documentElement.scrollHeight;
}
"""

STILL_JS = """
() => {
  // How long the page's DOM has gone unchanged, in ms. The observer lives in the
  // capture's isolated world, which shares the page's DOM (so it sees every change the
  // page makes) but not its scripts (so the page cannot silence it). The first call
  // starts watching and answers 0.
  if (!window.__osintStill) {
    const still = {since: performance.now()};
    new MutationObserver(() => { still.since = performance.now(); }).observe(
      document, {subtree: true, childList: true, attributes: true, characterData: true});
    window.__osintStill = still;
  }
  return performance.now() - window.__osintStill.since;
}
"""

AT_BOTTOM_JS = (
    "() => window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 2"
)
HEIGHT_JS = "() => document.documentElement.scrollHeight"

# Bounds on what the metadata step keeps of a page: JSON-LD nested past ``depth`` levels,
# strings past ``chars``, lists past ``items`` are cut and say so (the manifest is
# canonical JSON of bounded depth; the DOM and WARC keep everything).
SHOT_PREPARE_JS = """
() => {
  // A still page for the screenshot, as Playwright's own `animations: "disabled"` makes
  // it: an animation with an end jumps to it, an endless one is stopped until the
  // screenshot is taken (SHOT_UNDO_JS plays it again); a text caret is hidden. Shadow
  // roots are searched too. The answer is the page's full size, or null without a body.
  const roots = [document];
  for (let i = 0; i < roots.length; i++) {
    const walker = document.createTreeWalker(roots[i], NodeFilter.SHOW_ELEMENT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (node.shadowRoot) roots.push(node.shadowRoot);
    }
  }
  const stopped = new Set();
  const still = (root) => {
    for (const animation of root.getAnimations()) {
      if (!animation.effect || animation.playbackRate === 0 || stopped.has(animation)) continue;
      try {
        if (Number.isFinite(animation.effect.getComputedTiming().endTime)) {
          animation.finish();
        } else {
          animation.cancel();
          stopped.add(animation);
        }
      } catch (e) { /* an animation that cannot be moved stays as it is */ }
    }
  };
  const undo = [];
  for (const root of roots) {
    still(root);
    const again = () => still(root);
    root.addEventListener("transitionrun", again);
    root.addEventListener("animationstart", again);
    undo.push(() => {
      root.removeEventListener("transitionrun", again);
      root.removeEventListener("animationstart", again);
    });
    for (const field of root.querySelectorAll("input,textarea,[contenteditable]")) {
      const value = field.style.getPropertyValue("caret-color");
      const priority = field.style.getPropertyPriority("caret-color");
      field.style.setProperty("caret-color", "transparent", "important");
      undo.push(() => field.style.setProperty("caret-color", value, priority));
    }
  }
  undo.push(() => stopped.forEach((animation) => { try { animation.play(); } catch (e) {} }));
  window.__osintShotUndo = () => { delete window.__osintShotUndo; undo.forEach((f) => f()); };
  const body = document.body, root = document.documentElement;
  if (!body || !root) return null;
  const largest = (name) => Math.max(body[name], root[name]);
  return {
    width: Math.max(largest("scrollWidth"), largest("offsetWidth"), largest("clientWidth")),
    height: Math.max(largest("scrollHeight"), largest("offsetHeight"), largest("clientHeight")),
  };
}
"""

SHOT_UNDO_JS = "() => { if (window.__osintShotUndo) window.__osintShotUndo(); }"

METADATA_LIMITS = {"depth": 20, "items": 200, "chars": 10000, "scripts": 50, "scriptChars": 1000000}

METADATA_JS = """
(limits) => {
  const cut = (text) => text.length > limits.chars
    ? text.slice(0, limits.chars) + ' [cut at ' + limits.chars + ' characters]' : text;
  const prune = (value, depth) => {
    if (value === null || typeof value === 'boolean') return value;
    if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
    if (typeof value === 'string') return cut(value);
    if (depth >= limits.depth) return '[nested deeper than ' + limits.depth + ' levels: not kept]';
    if (Array.isArray(value)) {
      const kept = value.slice(0, limits.items).map(v => prune(v, depth + 1));
      if (value.length > limits.items) kept.push('[' + (value.length - limits.items) + ' more]');
      return kept;
    }
    if (typeof value === 'object') {
      const out = Object.create(null);  // a key named __proto__ is kept, not swallowed
      for (const key of Object.keys(value).slice(0, limits.items)) {
        out[cut(key)] = prune(value[key], depth + 1);
      }
      return out;
    }
    return String(value);
  };
  const meta = {};
  for (const m of document.querySelectorAll('meta[property], meta[name]')) {
    const key = (m.getAttribute('property') || m.getAttribute('name') || '').toLowerCase();
    if (!key) continue;
    if (key.startsWith('og:') || key.startsWith('article:') || key.startsWith('twitter:') ||
        ['author', 'description', 'robots', 'googlebot', 'date', 'keywords'].includes(key)) {
      const values = (meta[cut(key)] = meta[cut(key)] || []);
      if (values.length < limits.items) values.push(cut(m.getAttribute('content') || ''));
    }
  }
  const jsonld = [];
  const scripts = [...document.querySelectorAll('script[type="application/ld+json"]')];
  for (const s of scripts.slice(0, limits.scripts)) {
    const text = s.textContent || '';
    if (text.length > limits.scriptChars) { jsonld.push({unparsable: 'too large'}); continue; }
    try { jsonld.push(prune(JSON.parse(text), 0)); } catch (e) { jsonld.push({unparsable: true}); }
  }
  const canon = document.querySelector('link[rel=canonical]');
  return {title: cut(document.title), meta, jsonld, canonical: canon ? cut(canon.href) : null,
          lang: document.documentElement.lang || null};
}
"""
