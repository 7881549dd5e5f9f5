// statemgmt console: the little JavaScript the pages need. Loaded from the
// console's own origin (CSP default-src 'self'); it inserts stored values
// only as text (textContent), never as markup.
"use strict";

(function () {
  // Live messages on a task's page: Server-Sent Events from
  // <prefix>/tasks/<id>/events, appended as rows. EventSource reconnects by
  // itself and resumes after the last event id it saw.
  function followMessages(table) {
    var rows = document.getElementById("message-rows");
    var state = document.getElementById("live-state");
    var setState = function (s, text) {
      state.dataset.state = s;
      state.textContent = text;
    };
    var seen = {};
    rows.querySelectorAll("tr[data-seq]").forEach(function (tr) { seen[tr.dataset.seq] = true; });
    var cell = function (tr, text, cls) {
      var td = document.createElement("td");
      if (cls) { td.className = cls; }
      td.textContent = text;
      tr.appendChild(td);
      return td;
    };
    var es = new EventSource(table.dataset.stream);
    es.onopen = function () { setState("live", "live"); };
    es.onerror = function () { setState("reconnecting", "reconnecting…"); };
    es.addEventListener("failure", function () { setState("reconnecting", "reconnecting…"); });
    // The task was deleted while followed: stop, do not reconnect to a 404.
    es.addEventListener("gone", function () { es.close(); setState("gone", "task deleted"); });
    es.addEventListener("message", function (ev) {
      var m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      if (seen[String(m.seq)]) { return; }
      seen[String(m.seq)] = true;
      var tr = document.createElement("tr");
      tr.className = m.error ? "message error fresh" : "message fresh";
      tr.dataset.seq = String(m.seq);
      cell(tr, String(m.seq), "num");
      cell(tr, m.time, "time");
      var ctx = cell(tr, "", "");
      if (m.context_type) {
        var span = document.createElement("span");
        span.className = "ctype";
        span.textContent = m.context_type;
        ctx.appendChild(span);
        ctx.appendChild(document.createTextNode(" "));
      }
      ctx.appendChild(document.createTextNode(m.context));
      cell(tr, m.message, "pre msg");
      rows.appendChild(tr);
      setState("live", "live");
    });
    window.addEventListener("pagehide", function () { es.close(); });
  }

  function init() {
    var table = document.getElementById("messages");
    if (table && table.dataset.stream && window.EventSource) {
      followMessages(table);
    }
    // Filters: changing a status checkbox applies the filter at once.
    var form = document.getElementById("filters");
    if (form) {
      form.querySelectorAll("input[type=checkbox]").forEach(function (box) {
        box.addEventListener("change", function () { form.requestSubmit(); });
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
