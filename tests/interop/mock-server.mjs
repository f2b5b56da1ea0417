// Third-party token issuer for interop tests: the npm `oauth2-mock-server`.
//
//   node mock-server.mjs PORT        (or PORT=... node mock-server.mjs)
//
// Binds 127.0.0.1 only. The library advertises its issuer as
// `http://localhost:PORT` (it maps 127.x/0.0.0.0 to "localhost"); set
// MOCK_ISSUER to advertise something else (e.g. http://127.0.0.1:PORT).
// Prints exactly one line, `READY <issuer>`, to stdout once listening.
//
// Every token request (any client, any secret; client_credentials included)
// yields a JWT with header typ "JWT", alg RS256, and a payload with
// aud "orders-api" (unless the request sends `aud=...`), the requested
// `scope` verbatim, client_id when known, and no `sub`.
import { OAuth2Server, Events } from 'oauth2-mock-server';

console.info = (...a) => console.error(...a);
console.log = (...a) => console.error(...a);

const port = Number(process.argv[2] ?? process.env.PORT);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node mock-server.mjs PORT   (or env PORT)');
  process.exit(2);
}
const HOST = '127.0.0.1';
const AUDIENCE = 'orders-api';

const server = new OAuth2Server();
await server.issuer.keys.generate('RS256');
if (process.env.MOCK_ISSUER) server.issuer.url = process.env.MOCK_ISSUER;

server.service.on(Events.BeforeTokenSigning, (token, req) => {
  const body = req.body ?? {};
  const p = token.payload;
  if (p.aud === undefined) p.aud = AUDIENCE;
  if (typeof body.scope === 'string') p.scope = body.scope;
  else delete p.scope;
  const basic = req.headers.authorization?.match(/^Basic\s+(.+)$/i);
  let clientId = body.client_id;
  if (basic) {
    const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    clientId = decodeURIComponent(i >= 0 ? decoded.slice(0, i) : decoded);
  }
  if (typeof clientId === 'string' && clientId) p.client_id = clientId;
  delete p.sub;
});

await server.start(port, HOST);
process.stdout.write(`READY ${server.issuer.url}\n`);

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => server.stop().finally(() => process.exit(0)));
}
