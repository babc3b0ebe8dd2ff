// The origin of scripts/bench-proxy.sh's HTTP step: serves one file as /hit.png (image/png) and a
// stylesheet of about the same size with a few url()s as /hit.css, both cacheable for a day, and
// counts requests (GET /count) so the run can show that hits never reached it.
// Usage: node bench/proxy/origin.mjs --listen 127.0.0.1:PORT --file PATH
import http from 'node:http';
import { readFileSync } from 'node:fs';

const arg = (name) => process.argv[process.argv.indexOf(`--${name}`) + 1];
const [host, port] = arg('listen').split(':');
const png = readFileSync(arg('file'));
let css = '';
for (let i = 0; css.length < png.length; i++) {
  css += `.c${i}:hover{color:#${(i * 2654435761 % 0xffffff).toString(16).padStart(6, '0')}}` +
    `.b${i}{background:url(img/${i % 8}.png) no-repeat;margin:${i % 7}px}\n`;
}
let count = 0;
http.createServer((req, res) => {
  if (req.url === '/count') { res.end(String(count)); return; }
  count += 1;
  if (req.url === '/hit.png') res.writeHead(200, { 'content-type': 'image/png', 'cache-control': 'max-age=86400' }).end(png);
  else if (req.url === '/hit.css') res.writeHead(200, { 'content-type': 'text/css', 'cache-control': 'max-age=86400' }).end(css);
  else res.writeHead(404).end();
}).listen(Number(port), host, () => console.log('ready'));
