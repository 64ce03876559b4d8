"""GET physviz/jobs: a plain page listing the jobs of the store, with live log, metrics and a cancel button.

It needs no kernel (so it works after every kernel is gone, from any tab of a JupyterHub server) and
no CDN: the HTML, CSS and JavaScript are all here. It calls the REST API of this extension with the
session's cookie and sends the ``_xsrf`` token with every POST, as JupyterLab itself does. Job text is
only ever written with ``textContent``, so names and logs cannot inject markup.
"""
from __future__ import annotations

import json

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web

from physviz.jobs.states import TERMINAL
from physviz.server.handlers import AUTH_RESOURCE

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>physviz jobs</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
  h1 { font-size: 1.3rem; margin: 0 0 1rem 0; }
  table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
  th, td { text-align: left; padding: 0.3rem 0.6rem; border-bottom: 1px solid #ddd; }
  tr.job { cursor: pointer; }
  tr.job:hover, tr.job.selected { background: #eef4fb; }
  .status { font-weight: 600; }
  .status-running { color: #1f6fb5; } .status-completed { color: #2b8a3e; }
  .status-failed { color: #c92a2a; } .status-cancelled { color: #b07d00; } .status-pending { color: #666; }
  #detail { margin-top: 1.2rem; display: none; }
  #log { background: #111; color: #ddd; padding: 0.6rem; height: 18rem; overflow: auto; font-size: 0.8rem;
         white-space: pre-wrap; }
  #error { color: #c92a2a; margin: 0.5rem 0; }
  button { margin-left: 0.8rem; }
</style>
</head>
<body data-base-url="{base_url}" data-xsrf="{xsrf}">
<h1>physviz jobs</h1>
<div id="error" role="alert"></div>
<table id="jobs">
  <thead><tr><th>name</th><th>id</th><th>backend</th><th>status</th><th>created</th></tr></thead>
  <tbody></tbody>
</table>
<p id="empty" style="display:none">No jobs in the store yet: submit one with <code>physviz.jobs.submit(spec)</code>.</p>
<section id="detail">
  <h2><span id="detail-name"></span> <span id="detail-status" class="status"></span>
      <button id="cancel" type="button">Cancel job</button></h2>
  <p id="metrics">no metrics yet</p>
  <pre id="log"></pre>
</section>
<script>
(function () {
  "use strict";
  var base = document.body.dataset.baseUrl;
  var xsrf = document.body.dataset.xsrf;
  var api = base + "physviz/api/jobs";
  var selected = null, logSource = null, metricSource = null;
  var errorBox = document.getElementById("error");
  // CSI sequences (colours, cursor moves), OSC sequences (titles, links) and two-byte escapes
  var ANSI = /\\u001b\\[[0-?]*[ -\\/]*[@-~]|\\u001b\\][^\\u0007\\u001b]*(?:\\u0007|\\u001b\\\\)|\\u001b[@-Z\\\\-_]/g;

  function say(text) { errorBox.textContent = text || ""; }
  function request(method, url) {
    return fetch(url, {method: method, credentials: "same-origin",
                       headers: {"X-XSRFToken": xsrf, "Content-Type": "application/json"}})
      .then(function (r) {
        return r.json().then(function (body) {
          if (!r.ok) { throw new Error(body.message || (r.status + " " + r.statusText)); }
          return body;
        });
      });
  }
  function cell(row, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) { td.className = cls; }
    row.appendChild(td);
  }
  function render(jobs) {
    var body = document.querySelector("#jobs tbody");
    body.textContent = "";
    document.getElementById("empty").style.display = jobs.length ? "none" : "block";
    jobs.slice().reverse().forEach(function (job) {
      var row = document.createElement("tr");
      row.className = "job" + (selected === job.id ? " selected" : "");
      row.dataset.id = job.id;
      row.dataset.status = job.status;
      cell(row, job.name);
      cell(row, job.id);
      cell(row, job.backend);
      cell(row, job.status, "status status-" + job.status);
      cell(row, job.created ? new Date(job.created * 1000).toLocaleString() : "");
      row.addEventListener("click", function () { select(job); });
      body.appendChild(row);
      if (selected === job.id) { showStatus(job.status); }
    });
  }
  var polls = 0;
  function refresh(fresh) {
    // Recorded states every 3 s (no scheduler or SSH round trip), asked of the backends every 15 s.
    var url = api + (fresh === false ? "?fresh=0" : "");
    return request("GET", url).then(function (body) { say(""); render(body.jobs); })
      .catch(function (e) { say("Cannot list jobs: " + e.message); });
  }
  function showStatus(status) {
    var el = document.getElementById("detail-status");
    el.textContent = status;
    el.className = "status status-" + status;
    document.getElementById("cancel").disabled = {terminal}.indexOf(status) >= 0;
  }
  function closeStreams() {
    if (logSource) { logSource.close(); logSource = null; }
    if (metricSource) { metricSource.close(); metricSource = null; }
  }
  function select(job) {
    closeStreams();
    selected = job.id;
    document.getElementById("detail").style.display = "block";
    document.getElementById("detail-name").textContent = job.name;
    document.getElementById("log").textContent = "";
    document.getElementById("metrics").textContent = "no metrics yet";
    showStatus(job.status);
    var url = api + "/" + encodeURIComponent(job.id);
    logSource = new EventSource(url + "/logs/stream");
    var raw = "";
    logSource.addEventListener("log", function (ev) {
      var pre = document.getElementById("log");
      raw += JSON.parse(ev.data).text;
      // As a terminal shows it: no ANSI codes, and a carriage return (progress bars) overwrites its line.
      pre.textContent = raw.split("\\n").map(function (l) {
        l = l.replace(ANSI, "").replace(/\\r+$/, "");
        return l.substring(l.lastIndexOf("\\r") + 1);
      }).join("\\n");
      pre.scrollTop = pre.scrollHeight;
    });
    logSource.addEventListener("status", function (ev) { showStatus(JSON.parse(ev.data).status); });
    logSource.addEventListener("end", function (ev) { showStatus(JSON.parse(ev.data).status); logSource.close(); refresh(); });
    metricSource = new EventSource(url + "/metrics/stream");
    metricSource.addEventListener("metrics", function (ev) {
      var rows = JSON.parse(ev.data).metrics.filter(function (r) { return r.kind === "train"; });
      if (rows.length) {
        var last = rows[rows.length - 1];
        document.getElementById("metrics").textContent =
          "step " + last.step + " \\u00b7 loss " + (last.loss === null ? "NaN" : Number(last.loss).toPrecision(4));
      }
    });
    metricSource.addEventListener("end", function () { metricSource.close(); });
    refresh();
  }
  document.getElementById("cancel").addEventListener("click", function () {
    if (!selected) { return; }
    request("POST", api + "/" + encodeURIComponent(selected) + "/cancel")
      .then(function (job) { showStatus(job.status); refresh(); })
      .catch(function (e) { say("Cannot cancel: " + e.message); });
  });
  refresh();
  setInterval(function () { polls += 1; refresh(polls % 5 === 0); }, 3000);
})();
</script>
</body>
</html>
""".replace("{terminal}", json.dumps(list(TERMINAL)))


def _attr(value: str) -> str:
    """Text safe inside a double-quoted HTML attribute."""
    return (value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;"))


class JobsPageHandler(JupyterHandler):
    """GET physviz/jobs: the jobs page (a login redirect when not logged in)."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        html = PAGE.replace("{base_url}", _attr(self.base_url)).replace("{xsrf}", _attr(self.xsrf_token.decode()))
        self.finish(html)


def page_routes(base_url: str) -> list[tuple[str, type]]:
    """The page's route joined with `base_url`."""
    return [(url_path_join(base_url, "physviz", "jobs") + "/?", JobsPageHandler)]

