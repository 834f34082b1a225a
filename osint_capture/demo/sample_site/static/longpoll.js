// Opens a request the server never answers, like a chat or notification long-poll,
// so the network never goes idle while the page is open.
"use strict";

(function () {
  const root = document.documentElement;
  root.dataset.longpoll = "pending";
  fetch("/api/longpoll")
    .then(() => { root.dataset.longpoll = "answered"; })
    .catch(() => { root.dataset.longpoll = "failed"; });
})();
