// The viewer's proxy URL rewriting (web/viewer/assets.ts): which URLs of the replayed page go
// through the proxy, in full snapshots, mutations and style sheet rules, and the fallback's
// bookkeeping (one asset_request per stylesheet per page).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { load } from './bundle.mjs';

const { Assets, base64url, rewriteSrcset } = await load('viewer/assets.ts');

const HERE = 'https://platform.example/viewer/ten_1';
const BASE = 'https://platform.example/v1/proxy/cap1';
const SHOP = 'https://shop.example';
const CDN = 'https://cdn.example';
const p = (kind, url) => `${BASE}/${kind}/${base64url(url)}`;

function assets(sent = []) {
  return new Assets('/v1/proxy/cap1', [SHOP, `${CDN}/`, 'https://*.wild.example'], (u) => (sent.push(u), true), HERE);
}
const noLookup = { tagOf: () => null, parentTagOf: () => null, attrOf: () => null };

test('base64url is RFC 4648 URL-safe without padding, over UTF-8', () => {
  assert.equal(base64url('https://a/?'), Buffer.from('https://a/?').toString('base64url'));
  assert.equal(base64url('https://a/é>>?'), Buffer.from('https://a/é>>?').toString('base64url'));
});

test('only absolute http(s) URLs of the allowed and asset origins are proxied', () => {
  const a = assets();
  assert.equal(a.proxied(`${SHOP}/a.css`, 'css'), p('css', `${SHOP}/a.css`));
  assert.equal(a.proxied(`${CDN}/f.woff2`, 'asset'), p('asset', `${CDN}/f.woff2`));
  for (const u of ['https://other.example/a.css', 'http://shop.example/a.css', 'data:text/css,a{}', 'blob:https://shop.example/1', '/relative.css', 'https://x.wild.example/a.css', `${SHOP}/` + 'a'.repeat(2048)]) {
    assert.equal(a.proxied(u, 'css'), null, u);
  }
  assert.equal(a.proxied(p('css', `${SHOP}/a.css`), 'css'), null, 'never twice');
  assert.equal(a.originalOf(p('css', `${SHOP}/a.css`) + '?r=2'), `${SHOP}/a.css`);
});

test('a full snapshot: stylesheet links, images, srcset, video posters, SVG images, style attributes and style text', () => {
  const a = assets();
  const el = (id, tagName, attributes, childNodes = []) => ({ type: 2, id, tagName, attributes, childNodes });
  const snap = {
    type: 2,
    data: {
      node: {
        type: 0, id: 1, childNodes: [
          el(2, 'html', {}, [
            el(3, 'head', {}, [
              el(4, 'link', { rel: 'preload stylesheet', href: `${SHOP}/s.css` }),
              el(5, 'link', { rel: 'icon', href: `${SHOP}/favicon.png` }),
              el(6, 'style', {}, [{ type: 3, id: 7, textContent: `@import "${CDN}/i.css"; b{background:url(${SHOP}/bg.png)}` }]),
              el(8, 'style', { _cssText: `@font-face{src:url("${CDN}/f.woff2")}` }),
            ]),
            el(9, 'body', { style: `background-image:url(${SHOP}/b.png)` }, [
              el(10, 'img', { src: `${SHOP}/a.png`, srcset: `${SHOP}/a1.png 1x, data:image/png;base64,AA 2x` }),
              el(11, 'picture', {}, [el(12, 'source', { srcset: `${CDN}/w.webp 100w,${CDN}/x.webp 200w` })]),
              el(13, 'input', { type: 'IMAGE', src: `${SHOP}/go.png` }),
              el(14, 'video', { poster: `${SHOP}/p.jpg`, src: `${SHOP}/v.mp4` }),
              el(15, 'svg', {}, [el(16, 'image', { href: `${SHOP}/s.svg`, 'xlink:href': `${SHOP}/t.svg` })]),
              el(17, 'iframe', { src: `${SHOP}/frame.html` }),
              el(18, 'img', { src: 'https://elsewhere.example/x.png' }),
              { type: 3, id: 19, textContent: `url(${SHOP}/not-css.png)` },
            ]),
          ]),
        ],
      },
    },
  };
  a.event(snap, noLookup);
  const n = (id) => {
    const find = (x) => (x.id === id ? x : (x.childNodes ?? []).map(find).find(Boolean));
    return find(snap.data.node);
  };
  assert.equal(n(4).attributes.href, p('css', `${SHOP}/s.css`));
  assert.equal(n(5).attributes.href, `${SHOP}/favicon.png`, 'not a stylesheet');
  assert.equal(n(7).textContent, `@import "${p('css', `${CDN}/i.css`)}"; b{background:url("${p('asset', `${SHOP}/bg.png`)}")}`);
  assert.equal(n(8).attributes._cssText, `@font-face{src:url("${p('asset', `${CDN}/f.woff2`)}")}`);
  assert.equal(n(9).attributes.style, `background-image:url("${p('asset', `${SHOP}/b.png`)}")`);
  assert.equal(n(10).attributes.src, p('asset', `${SHOP}/a.png`));
  assert.equal(n(10).attributes.srcset, `${p('asset', `${SHOP}/a1.png`)} 1x, data:image/png;base64,AA 2x`);
  assert.equal(n(12).attributes.srcset, `${p('asset', `${CDN}/w.webp`)} 100w, ${p('asset', `${CDN}/x.webp`)} 200w`);
  assert.equal(n(13).attributes.src, p('asset', `${SHOP}/go.png`));
  assert.equal(n(14).attributes.poster, p('asset', `${SHOP}/p.jpg`));
  assert.equal(n(14).attributes.src, `${SHOP}/v.mp4`, 'media is not proxied');
  assert.equal(n(16).attributes.href, p('asset', `${SHOP}/s.svg`));
  assert.equal(n(16).attributes['xlink:href'], p('asset', `${SHOP}/t.svg`));
  assert.equal(n(17).attributes.src, `${SHOP}/frame.html`);
  assert.equal(n(18).attributes.src, 'https://elsewhere.example/x.png');
  assert.equal(n(19).textContent, `url(${SHOP}/not-css.png)`, 'text outside <style> is not CSS');
});

test('mutations: added subtrees, attribute changes (by the element in the replay), style diffs, style text and rules', () => {
  const a = assets();
  const tags = { 30: 'link', 31: 'img', 32: 'div', 33: 'style' };
  const look = {
    tagOf: (id) => tags[id] ?? null,
    parentTagOf: (id) => (id === 40 ? 'style' : id === 41 ? 'p' : null),
    attrOf: (id, name) => (id === 30 && name === 'rel' ? 'stylesheet' : null),
  };
  const ev = {
    type: 3,
    data: {
      source: 0,
      adds: [
        { parentId: 33, node: { type: 3, id: 50, textContent: `a{b:url(${SHOP}/x.png)}` } },
        { parentId: 32, node: { type: 2, id: 51, tagName: 'style', attributes: {}, childNodes: [] } },
        { parentId: 51, node: { type: 3, id: 52, textContent: `a{b:url(${SHOP}/y.png)}` } },
        { parentId: 32, node: { type: 2, id: 53, tagName: 'link', attributes: { rel: 'stylesheet', href: `${SHOP}/n.css` }, childNodes: [] } },
      ],
      texts: [
        { id: 40, value: `a{b:url(${SHOP}/t.png)}` },
        { id: 41, value: `url(${SHOP}/t.png)` },
      ],
      attributes: [
        { id: 30, attributes: { href: `${SHOP}/changed.css` } },
        { id: 31, attributes: { src: `${SHOP}/c.png`, srcset: null } },
        { id: 32, attributes: { style: { 'background-image': `url(${SHOP}/d.png)`, color: 'red', border: false, background: [`url(${SHOP}/e.png)`, 'important'] } } },
        { id: 99, attributes: { src: `${SHOP}/unknown-node.png` } },
      ],
      removes: [],
    },
  };
  a.event(ev, look);
  const d = ev.data;
  assert.equal(d.adds[0].node.textContent, `a{b:url("${p('asset', `${SHOP}/x.png`)}")}`);
  assert.equal(d.adds[2].node.textContent, `a{b:url("${p('asset', `${SHOP}/y.png`)}")}`, 'parent added in the same event');
  assert.equal(d.adds[3].node.attributes.href, p('css', `${SHOP}/n.css`));
  assert.equal(d.texts[0].value, `a{b:url("${p('asset', `${SHOP}/t.png`)}")}`);
  assert.equal(d.texts[1].value, `url(${SHOP}/t.png)`);
  assert.equal(d.attributes[0].attributes.href, p('css', `${SHOP}/changed.css`));
  assert.equal(d.attributes[1].attributes.src, p('asset', `${SHOP}/c.png`));
  assert.equal(d.attributes[1].attributes.srcset, null);
  assert.deepEqual(d.attributes[2].attributes.style, {
    'background-image': `url("${p('asset', `${SHOP}/d.png`)}")`, color: 'red', border: false,
    background: [`url("${p('asset', `${SHOP}/e.png`)}")`, 'important'],
  });
  assert.equal(d.attributes[3].attributes.src, `${SHOP}/unknown-node.png`);

  const rule = { type: 3, data: { source: 8, id: 5, adds: [{ rule: `a{b:url(${CDN}/r.png)}`, index: 0 }], replaceSync: `@import url(${CDN}/q.css);` } };
  a.event(rule, look);
  assert.equal(rule.data.adds[0].rule, `a{b:url("${p('asset', `${CDN}/r.png`)}")}`);
  assert.equal(rule.data.replaceSync, `@import url("${p('css', `${CDN}/q.css`)}");`);
});

test('fallback: one asset_request per stylesheet per page; after asset_ready later rewrites carry ?r=N', () => {
  const sent = [];
  const a = assets(sent);
  const css = `${SHOP}/s.css`;
  a.failed(p('css', css));
  a.failed(p('css', css));
  a.failed(p('asset', `${SHOP}/img.png`)); // not a stylesheet
  a.failed('https://elsewhere.example/x.css');
  assert.deepEqual(sent, [css]);
  assert.equal(a.stats.failed, 2);
  assert.equal(a.stats.requested, 1);
  a.ready(css, null);
  assert.equal(a.stats.ready, 1);
  assert.equal(a.proxied(css, 'css'), `${p('css', css)}?r=1`);
  assert.equal(a.proxied(`${SHOP}/img.png`, 'asset'), p('asset', `${SHOP}/img.png`));
  a.unavailable(`${SHOP}/never-asked.css`);
  assert.equal(a.stats.unavailable, 0, 'answers to other agents do not count');
  a.newPage();
  a.failed(`${p('css', css)}?r=1`);
  assert.deepEqual(sent, [css, css], 'a new page asks again');
});

test('a failed send (socket closed) does not use up the one request of the page', () => {
  let open = false;
  const sent = [];
  const a = new Assets('/v1/proxy/cap1', [SHOP], (u) => open && (sent.push(u), true), HERE);
  a.failed(p('css', `${SHOP}/s.css`));
  open = true;
  a.failed(p('css', `${SHOP}/s.css`));
  assert.deepEqual(sent, [`${SHOP}/s.css`]);
});

test('srcset parsing keeps descriptors and commas inside URLs', () => {
  const m = (u) => (u.startsWith('https://') ? `P(${u})` : null);
  assert.equal(rewriteSrcset('https://a/x,1.png 1x,https://a/y.png 2x', m), 'P(https://a/x,1.png) 1x, P(https://a/y.png) 2x');
  assert.equal(rewriteSrcset('  https://a/x.png  ', m), 'P(https://a/x.png)');
  assert.equal(rewriteSrcset('a.png 1x, b.png 2x', m), 'a.png 1x, b.png 2x', 'unchanged text when nothing is proxied');
});

test('a proxied image that failed is loaded once more with ?r=1, after a delay, unless its src changed', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const a = assets();
  const img = (src) => {
    const at = { src };
    return { getAttribute: (n) => at[n] ?? null, setAttribute: (n, v) => (at[n] = v), at };
  };
  const one = img(p('asset', `${SHOP}/a.png`));
  a.retryImage(one, 1000);
  t.mock.timers.tick(999);
  assert.equal(one.at.src, p('asset', `${SHOP}/a.png`), 'not before the delay');
  t.mock.timers.tick(1);
  assert.equal(one.at.src, `${p('asset', `${SHOP}/a.png`)}?r=1`);
  a.retryImage(one, 1000); // failed again: no second retry
  t.mock.timers.tick(5000);
  assert.equal(one.at.src, `${p('asset', `${SHOP}/a.png`)}?r=1`);
  const moved = img(p('asset', `${SHOP}/b.png`));
  a.retryImage(moved, 1000);
  moved.at.src = `${SHOP}/c.png`; // the page changed it meanwhile
  t.mock.timers.tick(1000);
  assert.equal(moved.at.src, `${SHOP}/c.png`);
  const direct = img('https://other.example/d.png');
  a.retryImage(direct, 1000);
  t.mock.timers.tick(1000);
  assert.equal(direct.at.src, 'https://other.example/d.png', 'not ours: left alone');
  assert.equal(a.stats.imageRetries, 2);
});
