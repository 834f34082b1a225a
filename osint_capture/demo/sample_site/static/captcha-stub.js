// Local stand-in for the reCAPTCHA / hCaptcha / Turnstile loaders. The fixture must
// never reach a real CAPTCHA provider, so it only draws an inert look-alike widget
// into each placeholder; nothing here can be solved.
"use strict";

(function () {
  const kinds = [
    [".g-recaptcha", "I'm not a robot", "reCAPTCHA"],
    [".h-captcha", "I am human", "hCaptcha"],
    [".cf-turnstile", "Verify you are human", "Cloudflare Turnstile"],
  ];
  for (const [selector, label, brand] of kinds) {
    for (const box of document.querySelectorAll(selector)) {
      if (box.dataset.widgetRendered) continue;
      const widget = document.createElement("label");
      widget.className = "captcha-widget";
      const check = document.createElement("input");
      check.type = "checkbox";
      check.disabled = true;
      const text = document.createElement("span");
      text.textContent = label;
      const mark = document.createElement("small");
      mark.textContent = brand;
      widget.append(check, text, mark);
      box.appendChild(widget);
      box.dataset.widgetRendered = "true";
    }
  }
})();
