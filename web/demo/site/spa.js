// A single-page app: the nav links switch views with history.pushState, never reloading the page.
(function () {
  var view = document.getElementById('spa-view');
  var views = {
    '/spa': {
      title: 'Overview',
      html:
        '<h2>Plan your next weekend</h2><p>Pick a guided trip, tick off the packing list, and ask us anything with “Get help”.</p>' +
        '<div class="cards" style="grid-template-columns:repeat(3,1fr)">' +
        '<div class="card"><h3>3 trips</h3><p>this month, from easy to airy.</p></div>' +
        '<div class="card"><h3>24 items</h3><p>on the packing list for an overnight.</p></div>' +
        '<div class="card"><h3>7 days</h3><p>a week of support, 8am to 8pm.</p></div></div>',
    },
    '/spa/trips': {
      title: 'Guided trips',
      html:
        '<h2>Guided trips</h2>' +
        '<div class="trip"><div class="badge">Sat 12</div><div><b>Cedar Ridge sunrise</b><br>11 km, moderate. Meet at 5:30am at the trailhead.</div></div>' +
        '<div class="trip"><div class="badge">Sun 20</div><div><b>Lakeside family loop</b><br>5 km, easy. Kids under 12 walk free.</div></div>' +
        '<div class="trip"><div class="badge">Sat 26</div><div><b>Granite traverse</b><br>18 km, hard. Helmets provided.</div></div>',
    },
    '/spa/checklist': {
      title: 'Packing list',
      html:
        '<h2>Packing list for an overnight</h2><div class="checklist">' +
        ['Tent', 'Sleeping bag', 'Mat', 'Stove', 'Fuel', 'Lighter', 'Headlamp', 'Water filter', 'First aid kit', 'Map', 'Rain jacket', 'Warm hat', 'Snacks', 'Sunscreen']
          .map(function (x, i) { return '<label><input type="checkbox" data-item="' + i + '"' + (i < 4 ? ' checked' : '') + '> ' + x + '</label>'; })
          .join('') +
        '</div>',
    },
    '/spa/about': {
      title: 'About us',
      html: '<h2>About Acme Outdoor</h2><p>We are a small shop of hikers and climbers. Since 2009 we have sold gear we use ourselves, and we answer the phone.</p><p>Our support team can look at this website with you, with your permission, to find the right size or fix a checkout problem.</p>',
    },
  };
  function route(path) {
    return views[path] ? path : '/spa';
  }
  function render(path) {
    var r = route(path);
    view.innerHTML = views[r].html;
    view.setAttribute('data-view', r);
    document.title = views[r].title + ' · Trip planner · Acme Outdoor';
    document.querySelectorAll('.spa-nav a').forEach(function (a) {
      a.classList.toggle('active', a.getAttribute('data-route') === r);
    });
  }
  document.querySelector('.spa-nav').addEventListener('click', function (e) {
    var a = e.target.closest('a[data-route]');
    if (!a) return;
    e.preventDefault();
    var to = a.getAttribute('data-route');
    if (to !== location.pathname) history.pushState({ route: to }, '', to);
    render(to);
  });
  window.addEventListener('popstate', function () {
    render(location.pathname);
  });
  render(location.pathname);
})();
