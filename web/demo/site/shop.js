// Acme Outdoor: the "Get help" widget of every page, built on the co-browsing SDK's public API
// (docs/sdk.md): Cobrowse.start() / end() / joinCode() / state() / on(event, fn).
// The SDK is loaded by the page's <script src=".../sdk/v1/cobrowse.js" data-key="pk_...">.
(function () {
  'use strict';
  var btn = document.getElementById('help-btn');
  var panel = document.getElementById('help-panel');
  var codeEl = document.getElementById('help-code');
  var statusEl = document.getElementById('help-status');
  var dot = document.getElementById('help-dot');
  var endBtn = document.getElementById('help-end');
  var titleEl = document.getElementById('help-title');
  if (!btn || !panel) return;

  // The signed-in customer of this demo shop: shown to the agent in the console.
  var VISITOR = { external_id: 'cust-1042', name: 'Sam Rivera', email: 'sam.rivera@example.com' };

  function sdk() {
    return window.Cobrowse || null;
  }
  function setStatus(text, kind) {
    statusEl.textContent = text;
    dot.className = 'dot' + (kind ? ' ' + kind : '');
  }
  function fmt(code) {
    return code && code.length === 6 ? code.slice(0, 3) + ' ' + code.slice(3) : code || '';
  }
  function showCode(code) {
    panel.hidden = false;
    titleEl.textContent = 'Your help code';
    codeEl.hidden = !code;
    codeEl.textContent = fmt(code);
    codeEl.setAttribute('data-code', code || '');
    endBtn.hidden = false;
    btn.textContent = 'Help: ' + fmt(code);
    document.documentElement.setAttribute('data-help-state', 'active');
  }
  function showIdle(message) {
    codeEl.hidden = true;
    codeEl.textContent = '';
    codeEl.setAttribute('data-code', '');
    endBtn.hidden = true;
    btn.disabled = false;
    btn.textContent = 'Get help';
    titleEl.textContent = 'Need a hand?';
    if (message) setStatus(message, '');
    document.documentElement.setAttribute('data-help-state', 'idle');
  }

  btn.addEventListener('click', function () {
    var C = sdk();
    if (!C) {
      panel.hidden = false;
      setStatus('Help is unavailable right now (the support service did not load).', '');
      return;
    }
    var st = C.state ? C.state() : 'idle';
    if (st === 'active' || st === 'connecting') {
      panel.hidden = !panel.hidden;
      return;
    }
    btn.disabled = true;
    btn.textContent = 'Connecting…';
    panel.hidden = false;
    setStatus('Starting a secure help session…', 'wait');
    try {
      if (C.init) C.init({ key: C.key || document.querySelector('script[data-key]').getAttribute('data-key'), visitor: VISITOR });
    } catch (e) {
      /* already initialised by the script tag: keep going */
    }
    Promise.resolve(C.start())
      .then(function (r) {
        btn.disabled = false;
        showCode((r && r.joinCode) || C.joinCode());
        setStatus('Read this code to our agent on the phone. Waiting for them to join…', 'wait');
      })
      .catch(function (e) {
        showIdle('Could not start: ' + ((e && e.message) || e));
      });
  });

  endBtn.addEventListener('click', function () {
    var C = sdk();
    if (C) Promise.resolve(C.end()).catch(function () {});
    showIdle('Session ended. Thanks!');
  });

  document.addEventListener('click', function (e) {
    if (!panel.hidden && !panel.contains(e.target) && e.target !== btn && document.documentElement.getAttribute('data-help-state') !== 'active') {
      panel.hidden = true;
    }
  });

  var C = sdk();
  if (!C) {
    btn.title = 'The support service did not load';
    return;
  }
  function on(ev, fn) {
    try {
      C.on(ev, fn);
    } catch (e) {
      /* an older SDK without this event */
    }
  }
  on('session_started', function (e) {
    showCode((e && e.joinCode) || C.joinCode());
    setStatus('Waiting for an agent to join…', 'wait');
  });
  on('agent_joined', function (e) {
    var name = (e && e.agent && e.agent.name) || 'An agent';
    showCode(C.joinCode());
    setStatus(name + ' is viewing this page with you.', 'on');
  });
  on('agent_left', function () {
    setStatus('The agent left. They can join again with the same code.', 'wait');
  });
  on('control_granted', function () {
    setStatus('The agent can now click and type on this page.', 'on');
  });
  on('control_revoked', function () {
    setStatus('The agent is viewing only.', 'on');
  });
  on('session_ended', function () {
    showIdle('The help session has ended.');
  });

  // A session that continues from the previous page of this tab.
  var st = C.state ? C.state() : 'idle';
  if ((st === 'active' || st === 'connecting') && C.joinCode && C.joinCode()) {
    showCode(C.joinCode());
    panel.hidden = true;
    setStatus('Help session in progress.', 'on');
  }
})();

// The cart counter of every page (localStorage, per origin).
(function () {
  var el = document.getElementById('cart-count');
  if (!el) return;
  function render() {
    el.textContent = String(Number(localStorage.getItem('acme.cart') || '2'));
  }
  render();
  document.addEventListener('click', function (e) {
    var t = e.target.closest ? e.target.closest('[data-add-to-cart]') : null;
    if (!t) return;
    localStorage.setItem('acme.cart', String(Number(localStorage.getItem('acme.cart') || '2') + 1));
    render();
    t.textContent = 'Added ✓';
  });
})();
