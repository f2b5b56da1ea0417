// Third-party authorization server for interop tests: the npm `oidc-provider`.
//
//   node oidc-provider.mjs PORT        (or PORT=... node oidc-provider.mjs)
//   node oidc-provider.mjs PORT --tls-cert FILE --tls-key FILE [--client-ca FILE] [--mtls-client-cert FILE]
//   node oidc-provider.mjs PORT --dpop-nonce     (with or without TLS)
//
// Binds 127.0.0.1 only; issuer is `http://127.0.0.1:PORT` (no trailing slash), or
// `https://127.0.0.1:PORT` with --tls-cert and --tls-key. Prints exactly one line,
// `READY <issuer>`, to stdout once listening; all of oidc-provider's own notices go to stderr.
//
// Client-credentials tokens:
//   resource=urn:orders-api          -> RFC 9068 JWT (typ at+jwt), aud "urn:orders-api"
//   resource=urn:orders-api-opaque   -> opaque token, introspectable by `orders-api`
//   no resource                      -> same as urn:orders-api-opaque
//
// DPoP (RFC 9449) is on: a token request with a valid `DPoP` proof gets a token bound to the
// proof's key (`cnf.jkt`, `token_type` DPoP) for any client; `orders-dpop` (client_secret_basic,
// orders-dpop-secret) has `dpop_bound_access_tokens` and is refused without a proof. Proofs
// may be signed with ES256, Ed25519/EdDSA (oidc-provider's default) and also PS256 and RS256.
// With --dpop-nonce every proof must carry a server nonce (400 `use_dpop_nonce` and a
// `DPoP-Nonce` header otherwise). oidc-provider refuses a DPoP proof on an mTLS-bound token
// request ("multiple proof-of-possession mechanisms"): the clients below stay separate.
//
// With TLS, RFC 8705 (mutual TLS) is on: TLS is terminated here, by Node itself, which asks
// every client for a certificate (and accepts a connection without one), so
// `features.mTLS.getCertificate` reads the peer certificate of the request's socket. Three
// more clients get certificate-bound tokens (`cnf.x5t#S256` of the certificate presented at
// the token endpoint):
//   orders-mtls-self-signed  self_signed_tls_client_auth: the certificate of --mtls-client-cert,
//                            registered in its `jwks` (x5c)
//   orders-mtls-pki          tls_client_auth: a certificate chaining to --client-ca whose SAN
//                            URI is spiffe://orders.test/client-a
//   orders-bound-secret      client_secret_basic (orders-bound-secret-secret); the certificate
//                            only binds the token
import { X509Certificate, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { parseArgs } from 'node:util';
import { generateKeyPair, exportJWK } from 'jose';
import Provider, { errors } from 'oidc-provider';

// Keep stdout for the READY line only.
console.info = (...a) => console.error(...a);
console.log = (...a) => console.error(...a);

const USAGE = 'usage: node oidc-provider.mjs PORT [--tls-cert FILE --tls-key FILE [--client-ca FILE] [--mtls-client-cert FILE]] [--dpop-nonce]   (or env PORT)';
let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'client-ca': { type: 'string' },
      'mtls-client-cert': { type: 'string' },
      'dpop-nonce': { type: 'boolean' },
    },
  });
} catch (err) {
  console.error(`${err.message}\n${USAGE}`);
  process.exit(2);
}
const { values: flags, positionals } = parsed;
const port = Number(positionals[0] ?? process.env.PORT);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error(USAGE);
  process.exit(2);
}
const tls = flags['tls-cert'] !== undefined || flags['tls-key'] !== undefined;
if (tls && (flags['tls-cert'] === undefined || flags['tls-key'] === undefined)) {
  console.error(`--tls-cert and --tls-key go together\n${USAGE}`);
  process.exit(2);
}
if (!tls && (flags['client-ca'] !== undefined || flags['mtls-client-cert'] !== undefined)) {
  console.error(`--client-ca and --mtls-client-cert need --tls-cert and --tls-key\n${USAGE}`);
  process.exit(2);
}
function read(flag) {
  try {
    return readFileSync(flags[flag]);
  } catch (err) {
    console.error(`--${flag} ${flags[flag]}: ${err.message}`);
    process.exit(2);
  }
}
const HOST = '127.0.0.1';
const issuer = `${tls ? 'https' : 'http'}://${HOST}:${port}`;
const SPIFFE_ID = 'spiffe://orders.test/client-a';

const ORDERS_SCOPES = 'orders:read orders:write orders:cancel orders:admin';
const JWT_RESOURCE = 'urn:orders-api';
const OPAQUE_RESOURCE = 'urn:orders-api-opaque';
const INTROSPECTOR = 'orders-api';

// A fresh RS256 signing key per start; nothing is committed.
const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: `rs256-${Date.now()}` };

const configuration = {
  clients: [
    {
      client_id: 'orders-client',
      client_secret: 'orders-client-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: ORDERS_SCOPES,
    },
    {
      client_id: 'orders-client-post',
      client_secret: 'orders-client-post-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_post',
      scope: ORDERS_SCOPES,
    },
    {
      // RFC 9449 §5.2: every token request of this client must carry a DPoP proof.
      client_id: 'orders-dpop',
      client_secret: 'orders-dpop-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: ORDERS_SCOPES,
      dpop_bound_access_tokens: true,
    },
    {
      // The resource server itself: only calls introspection.
      client_id: INTROSPECTOR,
      client_secret: 'orders-api-secret',
      grant_types: [],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: [jwk] },
  scopes: ['openid', ...ORDERS_SCOPES.split(' ')],
  clientDefaults: { id_token_signed_response_alg: 'RS256' },
  cookies: { keys: ['interop-test-cookie-key'] },
  // oidc-provider's default DPoP proof algorithms, plus RSA (PSS and PKCS#1 v1.5).
  enabledJWA: { dPoPSigningAlgValues: ['ES256', 'Ed25519', 'EdDSA', 'PS256', 'RS256'] },
  features: {
    devInteractions: { enabled: false },
    // On by default in oidc-provider 9; explicit here. --dpop-nonce: a fresh 32-byte secret
    // per start, and every proof needs a nonce.
    dPoP: flags['dpop-nonce']
      ? { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true }
      : { enabled: true },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // Only the resource server may introspect.
      allowedPolicy: async (ctx, client) => client.clientId === INTROSPECTOR,
    },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, client, oneOf) => oneOf ?? OPAQUE_RESOURCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resourceIndicator) => {
        switch (resourceIndicator) {
          case JWT_RESOURCE:
            return {
              scope: ORDERS_SCOPES,
              audience: JWT_RESOURCE,
              accessTokenFormat: 'jwt',
              jwt: { sign: { alg: 'RS256' } },
            };
          case OPAQUE_RESOURCE:
            return {
              scope: ORDERS_SCOPES,
              audience: OPAQUE_RESOURCE,
              accessTokenFormat: 'opaque',
            };
          default:
            throw new errors.InvalidTarget(`unknown resource indicator ${resourceIndicator}`);
        }
      },
    },
  },
  // Same as oidc-provider's default for client credentials (10 minutes), made explicit.
  ttl: { ClientCredentials: 600 },
};

// RFC 8705, when Node terminates TLS.
const CLIENT_CA = tls && flags['client-ca'] !== undefined ? read('client-ca') : undefined;
if (tls) {
  const bound = {
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: ORDERS_SCOPES,
    tls_client_certificate_bound_access_tokens: true,
  };
  configuration.clients.push({
    ...bound,
    client_id: 'orders-bound-secret',
    client_secret: 'orders-bound-secret-secret',
    token_endpoint_auth_method: 'client_secret_basic',
  });
  if (CLIENT_CA !== undefined) {
    configuration.clients.push({
      ...bound,
      client_id: 'orders-mtls-pki',
      token_endpoint_auth_method: 'tls_client_auth',
      tls_client_auth_san_uri: SPIFFE_ID,
    });
  }
  if (flags['mtls-client-cert'] !== undefined) {
    let certificate;
    try {
      certificate = new X509Certificate(read('mtls-client-cert'));
    } catch (err) {
      console.error(`--mtls-client-cert ${flags['mtls-client-cert']}: not a PEM certificate (${err.code ?? err.message})`);
      process.exit(2);
    }
    configuration.clients.push({
      ...bound,
      client_id: 'orders-mtls-self-signed',
      token_endpoint_auth_method: 'self_signed_tls_client_auth',
      // The public key of the certificate, with the certificate itself: oidc-provider matches
      // the presented certificate's SHA-256 against x5c[0].
      jwks: {
        keys: [{ ...certificate.publicKey.export({ format: 'jwk' }), use: 'sig', x5c: [certificate.raw.toString('base64')] }],
      },
    });
  }
  // Offered by discovery and allowed at the token endpoint.
  configuration.clientAuthMethods = [
    'client_secret_basic',
    'client_secret_post',
    'self_signed_tls_client_auth',
    ...(CLIENT_CA !== undefined ? ['tls_client_auth'] : []),
  ];
  configuration.features.mTLS = {
    enabled: true,
    certificateBoundAccessTokens: true,
    selfSignedTlsClientAuth: true,
    tlsClientAuth: CLIENT_CA !== undefined,
    // The certificate the client presented on this connection, if any.
    getCertificate(ctx) {
      const peer = ctx.socket.getPeerX509Certificate?.();
      return peer ?? undefined;
    },
    // Node checked the chain against --client-ca (rejectUnauthorized is off so that clients
    // without a certificate still reach discovery and JWKS).
    certificateAuthorized(ctx) {
      return ctx.socket.authorized === true;
    },
    certificateSubjectMatches(ctx, property, expected) {
      const peer = ctx.socket.getPeerX509Certificate?.();
      if (!peer) return false;
      switch (property) {
        case 'tls_client_auth_san_uri':
          return (peer.subjectAltName ?? '')
            .split(', ')
            .some((name) => name === `URI:${expected}`);
        case 'tls_client_auth_san_dns':
          return peer.checkHost(expected, { subject: 'never' }) === expected;
        default:
          return false;
      }
    },
  };
}

const provider = new Provider(issuer, configuration);
provider.on('server_error', (ctx, err) => console.error('server_error', err));
provider.on('grant.error', (ctx, err) => console.error('grant.error', err.message, err.error_description ?? ''));

const listening = () => process.stdout.write(`READY ${issuer}\n`);
const server = tls
  ? createServer(
    {
      cert: read('tls-cert'),
      key: read('tls-key'),
      ...(CLIENT_CA !== undefined ? { ca: CLIENT_CA } : {}),
      requestCert: true,
      rejectUnauthorized: false,
    },
    provider.callback(),
  ).listen(port, HOST, listening)
  : provider.listen(port, HOST, listening);
server.on('error', (err) => {
  console.error(err);
  process.exit(1);
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => server.close(() => process.exit(0)));
}
