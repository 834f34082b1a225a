// Sample post page. The post text is rendered client-side from /api/post/1 and the
// comments arrive by infinite scroll, as on real social sites: a capture that keeps
// only the first HTML response, or never scrolls, misses them.
"use strict";

(function () {
  const root = document.documentElement;
  const postId = document.body.dataset.postId;
  const bodyEl = document.getElementById("post-body");
  const section = document.getElementById("comments");
  const listEl = document.getElementById("comment-list");
  const statusEl = document.getElementById("comments-status");
  // Small enough that one batch of comments pushes the bottom out of reach again,
  // so each further page needs another scroll.
  const NEAR_BOTTOM_PX = 300;

  function renderPost(post) {
    bodyEl.replaceChildren();
    for (const line of post.text.split("\n")) {
      const p = document.createElement("p");
      p.dir = "auto"; // the Arabic line must lay out right-to-left
      p.textContent = line;
      bodyEl.appendChild(p);
    }
    bodyEl.dataset.rendered = "true";
    root.dataset.postRendered = "true";
  }

  fetch(`/api/post/${postId}`, { headers: { Accept: "application/json" } })
    .then((r) => {
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      return r.json();
    })
    .then(renderPost)
    .catch((err) => {
      bodyEl.textContent = `Could not load this post (${err.message}).`;
      root.dataset.postRendered = "error";
    });

  let nextPage = 1;
  let loaded = 0;
  let loading = false;
  let done = false;

  function nearBottom() {
    return window.innerHeight + window.scrollY >=
      document.documentElement.scrollHeight - NEAR_BOTTOM_PX;
  }

  function commentItem(c) {
    const li = document.createElement("li");
    li.className = "comment";
    li.dataset.commentId = String(c.id);
    const head = document.createElement("div");
    head.className = "comment-head";
    const who = document.createElement("span");
    who.className = "comment-author";
    who.textContent = c.author;
    const when = document.createElement("time");
    when.dateTime = c.published;
    when.textContent = c.published.replace("T", " ").replace("Z", " UTC");
    head.append(who, " · ", when);
    const text = document.createElement("p");
    text.dir = "auto";
    text.textContent = c.text;
    li.append(head, text);
    return li;
  }

  async function loadMore() {
    if (loading || done) return;
    loading = true;
    statusEl.textContent = "Loading comments…";
    let ok = false;
    try {
      const r = await fetch(`/api/comments?page=${nextPage}`);
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const data = await r.json();
      if (data.comments.length === 0) {
        done = true;
        section.dataset.complete = "true";
        statusEl.textContent = `All ${loaded} comments loaded.`;
        window.removeEventListener("scroll", onScroll);
      } else {
        for (const c of data.comments) listEl.appendChild(commentItem(c));
        loaded += data.comments.length;
        nextPage += 1;
        root.dataset.commentsLoaded = String(loaded);
        statusEl.textContent = "Scroll for more comments";
      }
      ok = true;
    } catch (err) {
      statusEl.textContent = `Could not load comments (${err.message}).`;
    } finally {
      loading = false;
    }
    // A reader already parked at the bottom would otherwise wait for a scroll that
    // never comes; retry only after success so a failing API cannot loop.
    if (ok && !done && nearBottom()) loadMore();
  }

  function onScroll() {
    if (nearBottom()) loadMore();
  }

  window.addEventListener("scroll", onScroll, { passive: true });
})();
