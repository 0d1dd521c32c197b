// A real OpenID Provider for AI Studio's login tests: oidc-provider on 127.0.0.1.
//
//   OIDC_PORT=5555 OIDC_CLIENT_ID=aistudio OIDC_CLIENT_SECRET=s3cret \
//   OIDC_REDIRECT_URIS=http://127.0.0.1:8000/hub/oauth_callback node tests/oidc/provider.mjs
//
// Logins go through oidc-provider's built-in development pages (devInteractions):
// a login form (any password is accepted for the accounts below) and a consent form.
// Prints "ready ISSUER" on stdout once it listens.
import Provider from 'oidc-provider';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) {
    console.error(`provider: ${name} is not set`);
    process.exit(2);
  }
  return value;
};

const port = Number(env('OIDC_PORT'));
const issuer = `http://127.0.0.1:${port}`;

// Accounts and the claims the provider releases about them.
const ACCOUNTS = {
  alice: { preferred_username: 'alice', email: 'alice@lab.example', groups: ['gpu-residents'] },
  bob: { preferred_username: 'bob', email: 'bob@lab.example', groups: ['students'] },
  ada: { preferred_username: 'ada', email: 'ada@lab.example', groups: ['hub-admins'] },
  carol: { preferred_username: 'carol', email: 'carol@lab.example', groups: ['visitors'] },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: env('OIDC_CLIENT_ID', 'aistudio'),
    client_secret: env('OIDC_CLIENT_SECRET'),
    redirect_uris: env('OIDC_REDIRECT_URIS').split(','),
    grant_types: ['authorization_code'],
    response_types: ['code'],
    // OAuthenticator sends the client secret in the token request's body
    token_endpoint_auth_method: 'client_secret_post',
  }],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email', 'email_verified'],
    groups: ['groups'], // the `groups` scope releases the `groups` claim
  },
  async findAccount(ctx, id) {
    const claims = ACCOUNTS[id];
    if (!claims) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, name: id, email_verified: true, ...claims };
      },
    };
  },
  cookies: { keys: ['aistudio-test-provider-cookie-key'] },
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => false },
});

// Quiet: only a line per server error, none of the development warnings' noise on stdout.
provider.on('server_error', (ctx, err) => console.error(`provider: server error: ${err.message}`));

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
