// A real, certified OpenID provider (panva's oidc-provider) for sso/oidc's
// TestOIDCRealProvider. It listens on 127.0.0.1 on a random port and prints
// one JSON line on stdout: {"issuer": "http://127.0.0.1:PORT"}.
//
// One confidential client (client_secret_basic) whose redirect URI, ID and
// secret come from the environment (OIDC_REDIRECT_URI, OIDC_CLIENT_ID,
// OIDC_CLIENT_SECRET); PKCE required. devInteractions is on, so a client
// without a browser signs in by posting the login form (any password) and
// then the consent form. The one account is "Alice", exactly so cased.
//
// The npm packages come from the cache .ci/deps fills (npm ci of this
// folder's package-lock.json); the test runs this file from a folder whose
// node_modules points there.
import http from 'node:http';
import Provider from 'oidc-provider';

const { OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URI } = process.env;
if (!OIDC_CLIENT_ID || !OIDC_CLIENT_SECRET || !OIDC_REDIRECT_URI) {
  console.error('provider.mjs: set OIDC_CLIENT_ID, OIDC_CLIENT_SECRET and OIDC_REDIRECT_URI');
  process.exit(2);
}

const accounts = {
  Alice: {
    sub: 'Alice',
    preferred_username: 'Alice',
    name: 'Alice Liddell',
    email: 'alice@example.test',
    email_verified: true,
  },
};

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: OIDC_CLIENT_ID,
    client_secret: OIDC_CLIENT_SECRET,
    redirect_uris: [OIDC_REDIRECT_URI],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
  },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['gatehouse-test-only-cookie-key'] },
  async findAccount(ctx, id) {
    const account = accounts[id];
    if (!account) return undefined;
    return { accountId: id, async claims() { return { ...account }; } };
  },
});
provider.on('server_error', (ctx, err) => console.error('provider.mjs: server_error', err));

server.on('request', provider.callback());
process.stdout.write(JSON.stringify({ issuer }) + '\n');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
