// Raw data → Appeals and goals: appeals per day, by channel and by campaign or source, drawn
// with Chart.js (chart.umd.min.js, served by the host: no inline script, no other origin).
// The numbers come from the page itself (data-chart, JSON written by the server).
(function () {
  "use strict";
  var holder = document.getElementById("appeals-chart");
  if (!holder || typeof Chart === "undefined") return;
  var data = JSON.parse(holder.dataset.chart);
  var palette = ["#2067b0", "#1f7a3d", "#b3261e", "#9a6400", "#6a3fb0", "#0f8a8a",
                 "#c2185b", "#5f6b7a", "#7cb342", "#ef6c00"];
  function draw(canvasId, series) {
    var canvas = document.getElementById(canvasId);
    if (!canvas) return;
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: data.days,
        datasets: series.map(function (s, i) {
          return { label: s.label, data: s.counts, backgroundColor: palette[i % palette.length] };
        })
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: {
          x: { stacked: true },
          y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } }
        },
        plugins: { legend: { position: "bottom" } }
      }
    });
  }
  draw("chart-channel", data.channel);
  draw("chart-campaign", data.campaign);
})();
