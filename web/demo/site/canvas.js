// Two canvases: #live-canvas is redrawn every second (a clock) and on #canvas-theme; the clock
// can be paused (#canvas-pause, or ?still=1 to start paused at 10:08:30, for screenshots).
// #static-canvas is drawn once.
(function () {
  var live = document.getElementById('live-canvas');
  var ctx = live.getContext('2d');
  var night = false;
  var still = /[?&]still=1\b/.test(location.search);
  var paused = still;
  var fixed = new Date(2026, 0, 1, 10, 8, 30);
  var pauseBtn = document.getElementById('canvas-pause');
  var themeBtn = document.getElementById('canvas-theme');
  var info = document.getElementById('canvas-info');

  function draw() {
    var now = paused ? fixed : new Date();
    var W = live.width, H = live.height;
    var sky = ctx.createLinearGradient(0, 0, 0, H);
    sky.addColorStop(0, night ? '#0d1b2a' : '#cfe6f2');
    sky.addColorStop(1, night ? '#27445e' : '#fdf3e4');
    ctx.fillStyle = sky;
    ctx.fillRect(0, 0, W, H);
    // hills
    ctx.fillStyle = night ? '#1b3a2c' : '#5d8f76';
    ctx.beginPath(); ctx.moveTo(0, 260); ctx.quadraticCurveTo(120, 200, 240, 250); ctx.quadraticCurveTo(360, 300, 480, 230); ctx.lineTo(480, 320); ctx.lineTo(0, 320); ctx.fill();
    // clock face
    var cx = 150, cy = 150, r = 100;
    ctx.fillStyle = night ? '#f4f1e6' : '#ffffff';
    ctx.strokeStyle = night ? '#f29a2e' : '#1f6f4a';
    ctx.lineWidth = 8;
    ctx.beginPath(); ctx.arc(cx, cy, r, 0, Math.PI * 2); ctx.fill(); ctx.stroke();
    ctx.lineWidth = 3; ctx.strokeStyle = '#1d2521';
    for (var i = 0; i < 12; i++) {
      var a = (i / 12) * Math.PI * 2;
      ctx.beginPath(); ctx.moveTo(cx + Math.sin(a) * (r - 18), cy - Math.cos(a) * (r - 18)); ctx.lineTo(cx + Math.sin(a) * (r - 8), cy - Math.cos(a) * (r - 8)); ctx.stroke();
    }
    function hand(angle, len, width, colour) {
      ctx.strokeStyle = colour; ctx.lineWidth = width; ctx.lineCap = 'round';
      ctx.beginPath(); ctx.moveTo(cx, cy); ctx.lineTo(cx + Math.sin(angle) * len, cy - Math.cos(angle) * len); ctx.stroke();
    }
    var s = now.getSeconds(), m = now.getMinutes() + s / 60, h = (now.getHours() % 12) + m / 60;
    hand((h / 12) * Math.PI * 2, 50, 7, '#1d2521');
    hand((m / 60) * Math.PI * 2, 75, 5, '#1d2521');
    hand((s / 60) * Math.PI * 2, 85, 2, '#f29a2e');
    ctx.fillStyle = '#f29a2e'; ctx.beginPath(); ctx.arc(cx, cy, 6, 0, Math.PI * 2); ctx.fill();
    // digital readout and daylight bar
    var pad = function (n) { return (n < 10 ? '0' : '') + n; };
    ctx.fillStyle = night ? '#f4f1e6' : '#15503a';
    ctx.font = 'bold 34px monospace';
    ctx.fillText(pad(now.getHours()) + ':' + pad(now.getMinutes()) + ':' + pad(s), 280, 120);
    ctx.font = '15px sans-serif';
    ctx.fillText(night ? 'Night mode · stars out' : 'Daylight left: 6 h 12 min', 280, 150);
    ctx.fillStyle = night ? '#3d5a73' : '#e6f1ea'; ctx.fillRect(280, 170, 170, 14);
    ctx.fillStyle = '#f29a2e'; ctx.fillRect(280, 170, 170 * (s / 59), 14);
    if (night) {
      ctx.fillStyle = '#fff';
      [[40, 30], [420, 40], [380, 90], [60, 280], [450, 200], [300, 30]].forEach(function (p) { ctx.fillRect(p[0], p[1], 3, 3); });
    }
  }
  themeBtn.addEventListener('click', function () {
    night = !night;
    themeBtn.textContent = night ? 'Switch to day' : 'Switch to night';
    draw();
  });
  pauseBtn.addEventListener('click', function () {
    paused = !paused;
    pauseBtn.textContent = paused ? 'Resume' : 'Pause';
    info.textContent = paused ? 'Paused.' : 'Ticks every second.';
    draw();
  });
  if (paused) { pauseBtn.textContent = 'Resume'; info.textContent = 'Paused.'; }
  draw();
  setInterval(function () { if (!paused) draw(); }, 1000);

  // The static map: drawn once.
  var map = document.getElementById('static-canvas').getContext('2d');
  map.fillStyle = '#eef3e8'; map.fillRect(0, 0, 480, 320);
  map.strokeStyle = '#c9d8c0'; map.lineWidth = 1;
  for (var k = 0; k < 8; k++) { map.beginPath(); map.ellipse(250, 160, 40 + k * 26, 24 + k * 16, 0.3, 0, Math.PI * 2); map.stroke(); }
  map.fillStyle = '#9cc3d9'; map.beginPath(); map.ellipse(90, 250, 60, 30, -0.2, 0, Math.PI * 2); map.fill();
  map.strokeStyle = '#c0443c'; map.lineWidth = 4; map.setLineDash([10, 6]);
  map.beginPath(); map.moveTo(60, 60); map.bezierCurveTo(180, 20, 300, 120, 420, 70); map.bezierCurveTo(460, 160, 340, 280, 220, 260); map.bezierCurveTo(120, 240, 40, 160, 60, 60); map.stroke();
  map.setLineDash([]);
  map.fillStyle = '#1f6f4a'; map.beginPath(); map.arc(60, 60, 9, 0, Math.PI * 2); map.fill();
  map.fillStyle = '#1d2521'; map.font = 'bold 14px sans-serif'; map.fillText('Trailhead', 36, 88);
  map.fillText('Cedar Ridge (1,840 m)', 300, 56);
  map.fillStyle = '#f29a2e'; map.beginPath(); map.moveTo(420, 60); map.lineTo(432, 82); map.lineTo(408, 82); map.fill();
})();
