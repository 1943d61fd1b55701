// The statistics page's charts, drawn by Chart.js (installed by make from the lock file, served by the
// service itself: the browser fetches nothing from anywhere else).
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("chart-data").textContent);
  if (typeof Chart === "undefined") {
    document.querySelectorAll(".chart").forEach((f) => f.append("Charts need Chart.js: run make."));
    return;
  }
  Chart.defaults.animation = false;
  new Chart(document.getElementById("daily-chart"), {
    type: "bar",
    data: {
      labels: data.daily.map((d) => d.day),
      datasets: [
        { label: "answered", data: data.daily.map((d) => d.answered), backgroundColor: "#2a7a3b" },
        { label: "abandoned", data: data.daily.map((d) => d.abandoned), backgroundColor: "#a33" },
        { label: "other (alternatives, fallback)", data: data.daily.map((d) => d.offered - d.answered - d.abandoned), backgroundColor: "#999" },
      ],
    },
    options: { responsive: false, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
  });
  new Chart(document.getElementById("hours-chart"), {
    type: "bar",
    data: {
      labels: data.hours.map((_, h) => String(h).padStart(2, "0")),
      datasets: [{ label: "calls", data: data.hours, backgroundColor: "#2456a6" }],
    },
    options: { responsive: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
  document.body.dataset.chartsDrawn = "2";
})();
