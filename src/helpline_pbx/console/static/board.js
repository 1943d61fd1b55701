// The live board: the first board comes with the page, the next ones by server-sent events.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const duration = (s) => {
    if (s === null || s === undefined) return "-";
    s = Math.floor(s);
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + String(s % 60).padStart(2, "0");
    return Math.floor(s / 3600) + " h " + String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  };
  const percent = (x) => (x === null ? "-" : Math.round(x * 100) + " %");
  const cell = (text, cls) => {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  };
  const fill = (table, rows) => {
    const body = $(table).querySelector("tbody");
    body.replaceChildren(...rows.map((cells) => {
      const tr = document.createElement("tr");
      tr.append(...cells);
      return tr;
    }));
  };
  function show(board) {
    const lines = [...board.lines, board.total];
    fill("lines", lines.map((l) => [
      cell(l.label), cell(l.open ? "yes" : "no"), cell(String(l.waiting)), cell(duration(l.longest_wait)),
      cell(String(l.on_duty)), cell(String(l.offered)), cell(String(l.answered)), cell(String(l.abandoned)),
      cell(String(l.short_abandons)), cell(percent(l.service_level) + (l.line === "all" ? " (each line's threshold)" : " ≤ " + l.threshold + " s")),
      cell(duration(l.average_speed_of_answer)),
    ]));
    fill("calls", board.calls.map((c) => [
      cell(c.code), cell(c.line), cell(c.state.replace("_", " "), "state-" + c.state), cell(duration(c.waited)),
      cell(c.listener || ""),
    ]));
    fill("listeners", board.listeners.map((l) => [
      cell(l.pseudonym), cell(l.role), cell(l.state.replace("_", " "), "state-" + l.state),
      cell(duration(l.since)), cell(l.left === null ? "" : duration(l.left)),
      cell(l.reason || (l.call ? "call " + l.call : "")),
    ]));
    $("debriefs").textContent = String(board.open_debriefs);
    $("alerts").replaceChildren(...board.alerts.map((a) => {
      const p = document.createElement("p");
      p.className = "alert";
      p.setAttribute("role", "alert");
      p.textContent = a;
      return p;
    }));
    $("definitions").textContent = Object.entries(board.definitions).map(([k, v]) => k.replaceAll("_", " ") + ": " + v).join(" · ");
    $("freshness").textContent = "updated " + new Date(board.at * 1000).toLocaleTimeString();
    document.body.dataset.boardAt = String(board.at);
  }
  show(JSON.parse($("initial-board").textContent));
  const events = new EventSource("/board/events");
  events.addEventListener("board", (e) => show(JSON.parse(e.data)));
  events.onerror = () => { $("freshness").textContent = "reconnecting…"; };
})();
