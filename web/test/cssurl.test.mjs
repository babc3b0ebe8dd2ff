// The viewer's url() scanner (web/viewer/cssurl.ts): what is a URL of a style sheet and what only
// looks like one, by CSS Syntax Level 3's tokenization, and rewriting that changes nothing else.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { load } from './bundle.mjs';

const { scanCssUrls, rewriteCssUrls } = await load('viewer/cssurl.ts');
const urls = (css) => scanCssUrls(css).map((u) => [u.kind, u.url]);

test('url() in its unquoted, quoted and spaced forms, any case, is found with its kind', () => {
  assert.deepEqual(urls('a{background:url(http://x/a.png)}'), [['asset', 'http://x/a.png']]);
  assert.deepEqual(urls('a{background:url("http://x/b.png") , URL( \'http://x/c.png\' )}'), [
    ['asset', 'http://x/b.png'],
    ['asset', 'http://x/c.png'],
  ]);
  assert.deepEqual(urls('a{b:url(  http://x/d.png  )}'), [['asset', 'http://x/d.png']]);
  assert.deepEqual(urls('@font-face{src:url(https://f/x.woff2)format("woff2")}'), [['asset', 'https://f/x.woff2']]);
});

test('@import with a string or a url() is a stylesheet; a string elsewhere is nothing', () => {
  assert.deepEqual(urls('@import "https://x/a.css";@import url(https://x/b.css) screen;'), [
    ['css', 'https://x/a.css'],
    ['css', 'https://x/b.css'],
  ]);
  assert.deepEqual(urls('@IMPORT/* c */\'https://x/c.css\';'), [['css', 'https://x/c.css']]);
  assert.deepEqual(urls('a::after{content:"https://x/not.css"} @media print{a{b:c}}'), []);
  assert.deepEqual(urls('@importx "https://x/no.css";'), []);
});

test('comments, strings, other functions and escapes that only look like url() are not URLs', () => {
  assert.deepEqual(urls('/* url(http://x/in-comment.png) */a{}'), []);
  assert.deepEqual(urls('a{content:"url(http://x/in-string.png)"}'), []);
  assert.deepEqual(urls("a{content:'\\'url(http://x/escaped-quote.png)'}"), []);
  assert.deepEqual(urls('a{b:xurl(http://x/other-function.png)}'), []);
  assert.deepEqual(urls('a{b:-url(http://x/x.png)}'), []);
  assert.deepEqual(urls('a{b:3url(http://x/dimension.png)}'), []);
  assert.deepEqual(urls('a\\"b{c:url(http://x/after-escaped-quote.png)}'), [['asset', 'http://x/after-escaped-quote.png']]);
  // an unterminated comment runs to the end
  assert.deepEqual(urls('a{} /* url(http://x/never.png)'), []);
});

test('escapes in the function name and in the URL are decoded', () => {
  assert.deepEqual(urls('a{b:u\\72l(http://x/\\61 .png)}'), [['asset', 'http://x/a.png']]);
  assert.deepEqual(urls('a{b:url("http://x/q\\"uote.png")}'), [['asset', 'http://x/q"uote.png']]);
  assert.deepEqual(urls('a{b:url(http://x/\\28paren\\29.png)}'), [['asset', 'http://x/(paren).png']]);
});

test('bad urls (a quote or parenthesis inside, spaces in the middle) are skipped, and scanning goes on after them', () => {
  assert.deepEqual(urls('a{b:url(http://x/a"b.png)} c{d:url(http://x/ok.png)}'), [['asset', 'http://x/ok.png']]);
  assert.deepEqual(urls('a{b:url(http://x/a b.png)} c{d:url(http://x/ok2.png)}'), [['asset', 'http://x/ok2.png']]);
  assert.deepEqual(urls('a{b:url(http://x/a(b.png)} c{d:url(http://x/ok3.png)}'), [['asset', 'http://x/ok3.png']]);
  // a string broken by a newline ends there; what follows is tokenized again
  assert.deepEqual(urls('a{content:"broken\nb{c:url(http://x/ok4.png)}'), [['asset', 'http://x/ok4.png']]);
});

test('rewriting replaces only the URLs the map answers for, every other byte unchanged', () => {
  const css = '/* keep */ @import "https://x/a.css";\na:hover { background : url( https://x/i.png ) no-repeat; }\nb{c:url(data:image/png;base64,AAAA)}';
  const out = rewriteCssUrls(css, (u, kind) => (u.startsWith('https://') ? `/p/${kind}/${u.length}` : null));
  assert.equal(out, '/* keep */ @import "/p/css/15";\na:hover { background : url("/p/asset/15") no-repeat; }\nb{c:url(data:image/png;base64,AAAA)}');
  assert.equal(rewriteCssUrls(css, () => null), css);
  // a replacement with quotes or backslashes cannot break out of its string
  const evil = rewriteCssUrls('a{b:url(x)}', () => 'a")}body{color:red}\\');
  assert.deepEqual(urls(evil), [['asset', 'a")}body{color:red}\\']]);
  assert.ok(!/}body/.test(evil.replace(/"(?:[^"\\]|\\.)*"/g, '')), 'the payload stays inside the string');
});

test('malformed and odd input never throws and keeps its length when nothing is rewritten', () => {
  const samples = ['', 'url(', 'url("', '@import', '@', '\\', 'a{b:url(\\', '/*', '"\\', 'u\\', '😀url(https://x/e.png)', '\u0000'];
  for (const s of samples) {
    assert.doesNotThrow(() => scanCssUrls(s), JSON.stringify(s));
    assert.equal(rewriteCssUrls(s, () => null), s);
  }
  assert.deepEqual(urls('😀{b:url(https://x/e.png)}'), [['asset', 'https://x/e.png']]);
});
