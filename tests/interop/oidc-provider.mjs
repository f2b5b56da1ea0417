// Third-party authorization server for interop tests: the npm `oidc-provider`.
//
//   node oidc-provider.mjs PORT        (or PORT=... node oidc-provider.mjs)
//
// Binds 127.0.0.1 only; issuer is `http://127.0.0.1:PORT` (no trailing slash).
// Prints exactly one line, `READY <issuer>`, to stdout once listening; all of
// oidc-provider's own notices go to stderr.
//
// Client-credentials tokens:
//   resource=urn:orders-api          -> RFC 9068 JWT (typ at+jwt), aud "urn:orders-api"
//   resource=urn:orders-api-opaque   -> opaque token, introspectable by `orders-api`
//   no resource                      -> same as urn:orders-api-opaque
import { generateKeyPair, exportJWK } from 'jose';
import Provider, { errors } from 'oidc-provider';

// Keep stdout for the READY line only.
console.info = (...a) => console.error(...a);
console.log = (...a) => console.error(...a);

const port = Number(process.argv[2] ?? process.env.PORT);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node oidc-provider.mjs PORT   (or env PORT)');
  process.exit(2);
}
const HOST = '127.0.0.1';
const issuer = `http://${HOST}:${port}`;

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
  features: {
    devInteractions: { enabled: false },
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

const provider = new Provider(issuer, configuration);
provider.on('server_error', (ctx, err) => console.error('server_error', err));
provider.on('grant.error', (ctx, err) => console.error('grant.error', err.message, err.error_description ?? ''));

const server = provider.listen(port, HOST, () => {
  process.stdout.write(`READY ${issuer}\n`);
});
server.on('error', (err) => {
  console.error(err);
  process.exit(1);
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => server.close(() => process.exit(0)));
}
