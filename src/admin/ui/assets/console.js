// fedsync console: the live parts only. Pages work without this file.
"use strict";

// Times: keep "3 min ago" current; the absolute time is the title.
function relative(date) {
  const s = Math.round((Date.now() - date.getTime()) / 1000);
  const a = Math.abs(s);
  let text;
  if (a < 5) return "just now";
  if (a < 60) text = a + " s";
  else if (a < 3600) text = Math.floor(a / 60) + " min";
  else if (a < 86400) text = Math.floor(a / 3600) + " h";
  else text = Math.floor(a / 86400) + " days";
  return s >= 0 ? text + " ago" : "in " + text;
}
function refreshTimes() {
  document.querySelectorAll("time[datetime]").forEach(function (t) {
    const d = new Date(t.getAttribute("datetime"));
    if (!isNaN(d)) t.textContent = relative(d);
  });
}

// Copy buttons: copy the value of the input they name.
function setupCopy() {
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      const input = document.getElementById(button.getAttribute("data-copy"));
      const done = function () { button.textContent = "Copied"; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(done, function () {
          input.select(); document.execCommand("copy"); done();
        });
      } else {
        input.select(); document.execCommand("copy"); done();
      }
    });
  });
}

// Sync now with a live progress bar: the form's POST answers with
// server-sent events (the progress stream of `sync now --follow`).
function setupSync() {
  const form = document.querySelector("form[data-follow]");
  if (!form || !window.fetch || !window.TextDecoder) return;
  const bar = document.getElementById("sync-bar");
  const fill = bar.querySelector(".fill");
  const label = document.getElementById("sync-label");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const submitter = event.submitter;
    const body = new URLSearchParams(new FormData(form));
    if (submitter && submitter.name) body.set(submitter.name, submitter.value);
    form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    bar.hidden = false;
    show(0, "starting…");
    fetch(form.getAttribute("data-follow"), {
      method: "POST",
      headers: { "X-CSRF-Token": body.get("csrf") },
      body: body,
      credentials: "same-origin",
    }).then(function (response) {
      if (!response.ok) return response.text().then(function () { failed("the console refused (HTTP " + response.status + "); reload the page"); });
      return read(response.body.getReader());
    }).catch(function (e) { failed("the connection was lost: " + e + "; the sync goes on in the daemon, reload to see it"); });
  });
  const runs = {};
  function show(percent, text) {
    fill.style.width = percent + "%";
    bar.setAttribute("aria-valuenow", String(percent));
    label.textContent = text;
  }
  function failed(text) { label.textContent = "error: " + text; bar.classList.add("failed"); }
  function onEvent(name, data) {
    const d = JSON.parse(data);
    if (name === "progress") {
      runs[d.runId] = d;
      let records = 0, total = 0, known = true;
      Object.keys(runs).forEach(function (k) {
        records += runs[k].records;
        if (runs[k].total === null) known = false; else total += runs[k].total;
      });
      const percent = known && total > 0 ? Math.min(99, Math.floor(100 * records / total)) : 0;
      show(percent, records + (known ? " of " + total : "") + " records");
    } else if (name === "done") {
      if (d.ok) show(100, "done: " + d.summary);
      else failed(d.summary);
      const again = document.getElementById("sync-reload");
      if (again) again.hidden = false;
    } else if (name === "error") {
      failed(d.message);
    }
  }
  function read(reader) {
    const decoder = new TextDecoder();
    let buffer = "";
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) return;
        buffer += decoder.decode(chunk.value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let name = "message", data = "";
          block.split("\n").forEach(function (line) {
            if (line.startsWith("event: ")) name = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          });
          if (data) onEvent(name, data);
        }
        return pump();
      });
    }
    return pump();
  }
}

document.addEventListener("DOMContentLoaded", function () {
  refreshTimes();
  setInterval(refreshTimes, 30000);
  setupCopy();
  setupSync();
});
