// What must never cross: masked and password values (nor their lengths) in any frame the
// visitor's browser sends; a script of the visitor's page in the agent's browser; a foreign
// page's postMessage to the viewer. And white-labelling: the tenant's brand, never ours.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, test } from 'node:test';
import { newContext, waitFor } from './lib/browser.mjs';
import { allow, inViewer, openPair, openViewer, openVisitor, viewerState, waitInViewer } from './lib/cobrowse.mjs';
import { platformCall, useStack } from './lib/stack.mjs';

const MASK = '••••••••';

let stack;
let browser;
useStack((s, b) => ((stack = s), (browser = b)));

/** A one-page site on its own loopback origin: html(origin) is served at /. */
async function foreignSite(html) {
  const server = createServer((req, res) => {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.end(html(`http://127.0.0.1:${server.address().port}`));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((r) => server.close(r)) };
}

describe('privacy', () => {
  test('masked and password values, and their lengths, appear in no frame the browser sent', async () => {
    const secrets = {
      password: 'Tr41l-Mix!secret',
      card: '4242 4242 4242 4242',
      cvc: '737',
      expiry: '12/29',
    };
    const pair = await openPair(stack, browser, { path: '/form.html' });
    const page = pair.visitor.page;
    try {
      // Fields added after the snapshot: a hidden input, a field inside a data-cobrowse-mask
      // block, a field with no hint at all that receives a card number.
      await page.evaluate(() => {
        const box = document.createElement('div');
        box.setAttribute('data-cobrowse-mask', '');
        box.innerHTML = '<p id="masked-text">Account 55-ORCHID-91</p><input id="masked-input">';
        document.querySelector('form').append(box);
        const hidden = document.createElement('input');
        hidden.type = 'hidden';
        hidden.name = 'csrf';
        hidden.value = 'csrf-HIDDEN-7781';
        document.querySelector('form').append(hidden);
        const plain = document.createElement('input');
        plain.id = 'plain';
        document.querySelector('form').append(plain);
      });
      await page.locator('#name').fill('Visible Name');
      for (const [id, v] of Object.entries(secrets)) await page.locator(`#${id}`).pressSequentially(v, { delay: 5 });
      await page.locator('#masked-input').fill('ORCHID-INPUT-42');
      await page.locator('#plain').fill('4111 1111 1111 1111');
      await page.evaluate(() => (document.querySelector('input[name=csrf]').value = 'csrf-CHANGED-9910'));
      await pair.waitInViewer((doc) => doc.querySelector('#name')?.value === 'Visible Name', undefined, 'the visible field');
      await pair.waitInViewer((doc) => !!doc.querySelector('#plain'), undefined, 'the late fields');
      await page.waitForTimeout(300); // let the last batch leave

      const sent = pair.visitor.sent.allText();
      assert.ok(sent.includes('Visible Name'), 'the capture itself works (control value present)');
      const forbidden = [
        ...Object.values(secrets),
        '4242424242424242',
        '4111 1111 1111 1111',
        'csrf-HIDDEN-7781',
        'csrf-CHANGED-9910',
        '55-ORCHID-91',
        'ORCHID-INPUT-42',
        '4417-SIERRA', // the tenant's masking selector (.secret-note)
        '1234 5678 9012 3456', // a card field's placeholder
      ];
      // Short secrets are looked for as whole JSON string values ("737"), as a leaked input value
      // would travel: as a bare substring they also match timestamps and coordinates.
      const leaked = (v) => (v.length < 8 ? sent.includes(JSON.stringify(v)) : sent.includes(v));
      for (const s of forbidden) assert.ok(!leaked(s), `"${s}" left the browser`);
      // Neither their lengths: every value made of mask characters (ours, or rrweb's own '*' per
      // character) is the fixed mask.
      for (const m of sent.matchAll(/"([•*]{2,})"/g)) assert.equal(m[1], MASK, `a mask of length ${m[1].length}`);
      // Every prefix of a typed secret longer than 3 characters (keystroke by keystroke).
      for (const v of [secrets.password, secrets.card]) {
        for (let n = 4; n <= v.length; n++) assert.ok(!leaked(v.slice(0, n)), `a prefix of a secret (${n} chars) left the browser`);
      }
      // The viewer shows the fixed mask where the visitor typed a secret.
      assert.equal(await pair.inViewer((doc) => doc.querySelector('#card').value), MASK);
      assert.equal(await pair.inViewer((doc) => doc.querySelector('#password').value), MASK);
      assert.equal(await pair.inViewer((doc) => doc.querySelector('#plain').value), MASK);
    } finally {
      await pair.close();
    }
  });

  test("a script planted in the visitor's page never runs in the viewer", async () => {
    const pair = await openPair(stack, browser, { path: '/' });
    const hits = [];
    await pair.agent.ctx.route('**/planted/**', (route) => {
      hits.push(route.request().url());
      return route.fulfill({ status: 204 });
    });
    try {
      const plant = () => {
        const box = document.createElement('div');
        box.id = 'planted';
        box.innerHTML =
          '<img id="p-img" src="data:image/gif;base64,INVALID" onerror="fetch(\'/planted/onerror\');parent.__planted=1">' +
          '<a id="p-link" href="javascript:fetch(\'/planted/href\')">link</a>' +
          '<svg><a id="p-svg"><set attributeName="href" to="javascript:fetch(\'/planted/svg\')"/></a></svg>' +
          '<iframe id="p-frame" srcdoc="<script>fetch(\'/planted/srcdoc\');parent.parent.__planted=3</script>"></iframe>' +
          '<div id="p-style" style="background:url(/planted/style-ok.png)">styled</div>';
        document.body.append(box);
        const s = document.createElement('script');
        s.textContent = "window.__visitorRan = true; fetch('/planted/script').catch(()=>{}); parent.__planted = 2;";
        document.body.append(s);
      };
      await pair.visitor.page.evaluate(plant);
      await pair.waitInViewer((doc) => !!doc.querySelector('#p-link'), undefined, 'the planted elements in the viewer');
      // Try to trigger them in the viewer as a curious agent would.
      await pair.inViewer((doc) => {
        doc.querySelector('#p-link')?.click();
        doc.querySelector('#p-img')?.dispatchEvent(new Event('error'));
        return true;
      });
      await pair.agent.page.waitForTimeout(1000);
      assert.equal(await pair.agent.page.evaluate(() => window.__planted), undefined, 'no planted code ran in the viewer page');
      const ran = hits.filter((u) => !u.includes('style-ok'));
      assert.deepEqual(ran, [], 'no planted script fetched anything from the viewer');
      const sandbox = await pair.agent.page.evaluate(() => document.querySelector('iframe').getAttribute('sandbox'));
      assert.ok(sandbox !== null && !sandbox.includes('allow-scripts'), `replay iframe sandbox "${sandbox}"`);
      // The viewer page itself is served with a CSP that allows only its own scripts.
      const res = await fetch(pair.agent.page.url().split('#')[0]);
      const csp = res.headers.get('content-security-policy') ?? '';
      assert.match(csp, /script-src 'self'(;|$)/);
      assert.match(csp, /frame-ancestors /);
    } finally {
      await pair.close();
    }
  });

  test('the postMessage API answers the allowed console and refuses a foreign origin', async () => {
    const visitor = await openVisitor(browser, stack.shopUrl('/form.html'));
    const { sessionId } = await visitor.page.evaluate(() => window.Cobrowse.start());
    const join = await stack.partner('POST', `/partner/sessions/${sessionId}/join`);
    const foreign = await foreignSite(() => '<!doctype html><title>Foreign</title><p>not a console</p>');
    const ctx = await newContext(browser);
    try {
      // A foreign page that opens the viewer and asks it to end the session.
      const page = await ctx.newPage();
      const warnings = [];
      ctx.on('page', (p) => p.on('console', (m) => m.type() === 'warning' && warnings.push(m.text())));
      await page.goto(foreign.url);
      const [popup] = await Promise.all([ctx.waitForEvent('page'), page.evaluate((u) => (window.viewer = window.open(u)), join.body.embed_url)]);
      await popup.waitForFunction(() => typeof window.__cbViewer === 'object' && window.__cbViewer.state().sessionId);
      await page.evaluate(() => {
        window.viewer.postMessage({ source: 'cb-console', action: 'end' }, '*');
        window.viewer.postMessage({ source: 'cb-console', action: 'request_control' }, '*');
      });
      await waitFor(() => warnings.some((w) => /origin/i.test(w)), { message: 'the viewer to warn about the foreign origin' });
      assert.notEqual((await viewerState(popup)).connection, 'ended');
      assert.notEqual((await viewerState(popup)).control, 'pending', 'no control request from a foreign page');
      const s = await stack.api('GET', `/v1/sessions/${sessionId}`);
      assert.notEqual(s.body.status, 'ended', 'the foreign page could not end the session');
      // A foreign page cannot frame the viewer at all (frame-ancestors).
      const framed = await ctx.newPage();
      await framed.goto(foreign.url);
      await framed.evaluate((u) => {
        const f = document.createElement('iframe');
        f.src = u;
        document.body.append(f);
      }, join.body.embed_url);
      await framed.waitForTimeout(1500);
      const inner = framed.frames().find((f) => f !== framed.mainFrame());
      const viewerRan = inner ? await inner.evaluate(() => typeof window.__cbViewer).catch(() => 'blocked') : 'no frame';
      assert.notEqual(viewerRan, 'object', 'the viewer ran inside a foreign frame');

      // The demo console (an allowed origin) frames the viewer and drives it.
      const desk = await ctx.newPage();
      await desk.goto(stack.consoleUrl);
      await desk.locator(`li[data-session-id="${sessionId}"] button`).click();
      await allow(visitor.page);
      const frame = desk.frameLocator('#viewer-frame');
      await frame.locator('iframe').waitFor();
      await desk.evaluate(() => document.querySelector('#viewer-frame').contentWindow.postMessage({ source: 'cb-console', action: 'request_control' }, location.origin));
      await visitor.page.locator('.cb-ui [data-cb-action="allow"]').waitFor();
    } finally {
      await visitor.page.evaluate(() => window.Cobrowse.end()).catch(() => {});
      await ctx.close();
      await visitor.ctx.close();
      await foreign.close();
    }
  });
});

describe('white label', () => {
  test("a white-labelled tenant's branding shows in the viewer and the consent prompt, and our name never does", async () => {
    const { baseUrl, adminToken } = stack;
    const brand = { product_name: 'Zeta Care Live', primary_color: '#7a1fa2', accent_color: '#00897b', consent_text: 'Zeta Care would like to look at this page with you.' };
    const t = await platformCall(baseUrl, adminToken, 'POST', '/v1/tenants', {
      body: { name: `Zeta ${Date.now()}`, allowed_origins: [stack.demo.origin], branding: brand, permissions: { remote_control: 'ask' } },
    });
    assert.equal(t.status, 201, JSON.stringify(t.body));
    const pk = await platformCall(baseUrl, adminToken, 'POST', '/v1/api_keys', { tenant: t.body.id, body: { type: 'publishable', name: 'site' } });
    assert.equal(pk.status, 201);
    const visitor = await openVisitor(browser, stack.shopUrl('/'));
    await visitor.page.evaluate((key) => window.Cobrowse.init({ key }), pk.body.secret);
    const { sessionId } = await visitor.page.evaluate(() => window.Cobrowse.start());
    const tok = await platformCall(baseUrl, adminToken, 'POST', `/v1/sessions/${sessionId}/agent_tokens`, { tenant: t.body.id, body: { agent: { id: 'z1', name: 'Zed' } } });
    assert.equal(tok.status, 201);
    const agent = await openViewer(browser, tok.body.embed_url);
    try {
      // The consent prompt, in the tenant's brand.
      const prompt = visitor.page.locator('.cb-ui [role="dialog"]');
      await prompt.waitFor();
      const promptText = await prompt.innerText();
      assert.match(promptText, /Zeta Care Live/);
      assert.match(promptText, /Zeta Care would like to look at this page with you\./);
      assert.doesNotMatch(promptText, /cobrowse/i);
      const border = await prompt.evaluate((el) => getComputedStyle(el).borderTopColor);
      assert.equal(border, 'rgb(122, 31, 162)');
      await allow(visitor.page);
      await waitInViewer(agent.page, (doc) => !!doc.querySelector('.card'));
      // The viewer: title, product name, colours; no platform name anywhere visible.
      assert.equal(await agent.page.title(), 'Zeta Care Live');
      assert.match(await agent.page.locator('body').innerText(), /Zeta Care Live/);
      const visible = (await agent.page.locator('body').innerText()) + (await agent.page.title());
      assert.doesNotMatch(visible, /cobrowse/i);
      const brandVar = await agent.page.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue('--brand').trim());
      assert.equal(brandVar.toLowerCase(), '#7a1fa2');
      // The indicator on the visitor's page names the agent, not the platform.
      const bar = await visitor.page.locator('.cb-ui [role="status"]').innerText();
      assert.match(bar, /Zed/);
      assert.doesNotMatch(bar, /cobrowse/i);
      void inViewer;
    } finally {
      await visitor.page.evaluate(() => window.Cobrowse.end()).catch(() => {});
      await visitor.ctx.close();
      await agent.ctx.close();
    }
  });
});
