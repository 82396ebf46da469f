/*
 * The smoke check (scripts/smoke.js, make vergabe-smoke) against real local HTTPS and HTTP servers
 * on loopback, with throw-away certificates made by openssl when the tests start: a CA, a leaf
 * for the host, one expiring in 7 days, one for another host. The script connects to 127.0.0.1 and
 * speaks to the host name, as it does to the ingress address in production.
 * Most scenarios call the script's smoke(argv, output) in this process (the servers answer while
 * it waits); a passing site, a failing check and the usage errors also run it as the deploy does,
 * `node scripts/smoke.js`, for its exit codes and output streams.
 */
import { execFile, execFileSync } from 'child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { createServer as createHttpServer, IncomingMessage, Server, ServerResponse } from 'http';
import { createServer as createHttpsServer } from 'https';
import { AddressInfo } from 'net';
import { tmpdir } from 'os';
import { join } from 'path';
import { smoke as smokeCheck } from '../scripts/smoke';

const SCRIPT = join(__dirname, '..', 'scripts/smoke.js');
const HOST = 'vergabe.test';

let dir: string;
const certs: Record<'ca' | 'valid' | 'soon' | 'other', { cert: string; key: string }> = {} as any;

function openssl(...args: string[]) {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A leaf signed by the test CA for `dns`, valid for `days`. */
function leaf(name: string, dns: string, days: number) {
  openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${dns}`);
  writeFileSync(join(dir, `${name}.ext`), `subjectAltName=DNS:${dns}\nbasicConstraints=CA:FALSE\n`
    + 'keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key',
    '-set_serial', String(Date.now()), '-days', String(days), '-extfile', `${name}.ext`, '-out', `${name}.pem`);
  certs[name as keyof typeof certs] = {
    cert: readFileSync(join(dir, `${name}.pem`), 'utf8') + readFileSync(join(dir, 'ca.pem'), 'utf8'),
    key: readFileSync(join(dir, `${name}.key`), 'utf8'),
  };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vergabe-smoke-'));
  openssl('req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '30', '-subj', '/CN=vergabe smoke test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  leaf('valid', HOST, 90);
  leaf('soon', HOST, 7);
  leaf('other', 'other.test', 90);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** How the local site behaves; the defaults are a healthy deployment. */
interface Site {
  cert: keyof typeof certs;
  health: number | 'hang';
  front: 'page' | 'login-redirect' | 'redirect-elsewhere' | 'page-without-assets';
  cssType: string;
  httpRedirect: boolean;
}

const PAGE = '<!doctype html><html><head><!-- <link rel="stylesheet" href="/commented-out.css"> -->\n'
  + '<link rel="icon" href="/static/favicon.ico"><link rel="stylesheet" href="https://cdn.example/x.css">\n'
  + '<link rel="stylesheet" href="/static/css/app.3f2a.css">'
  + '<script src="/static/js/app.9c1d.js" defer></script>'
  + '</head><body><h1>Vergabe Teilnahme</h1></body></html>';
const LOGIN = '<!doctype html><html><head><script src="/static/js/login.js"></script></head>'
  + '<body>Anmelden</body></html>';

/** Starts the site on ephemeral loopback ports; returns them, the requests seen, and a stop. */
async function serve(change: Partial<Site> = {}) {
  const site: Site = {
    cert: 'valid', health: 200, front: 'page', cssType: 'text/css; charset=utf-8', httpRedirect: true,
    ...change,
  };
  const seen: string[] = [];
  let httpsPort = 0;
  const app = (request: IncomingMessage, response: ServerResponse) => {
    const path = request.url ?? '';
    seen.push(`${request.headers.host} ${path}`);
    const send = (status: number, type: string, body: string, headers: Record<string, string> = {}) => {
      response.writeHead(status, { 'content-type': type, ...headers });
      response.end(body);
    };
    if (path === '/healthz') {
      if (site.health !== 'hang') send(site.health, 'text/plain', 'ok');
      return;
    }
    if (path === '/') {
      if (site.front === 'page') return send(200, 'text/html', PAGE);
      if (site.front === 'page-without-assets') return send(200, 'text/html', '<html><body>leer</body></html>');
      const location = site.front === 'login-redirect'
        ? '/accounts/login/?next=/' : 'https://login.elsewhere.test/login';
      return send(302, 'text/html', '', { location });
    }
    if (path === '/accounts/login/?next=/') return send(200, 'text/html', LOGIN);
    if (path.endsWith('.css')) return send(200, site.cssType, 'body{}');
    if (path.endsWith('.js')) return send(200, 'text/javascript', '1;');
    return send(404, 'text/html', 'not found');
  };
  const secure = createHttpsServer(certs[site.cert], app);
  const plain = createHttpServer((request, response) => {
    seen.push(`http ${request.headers.host} ${request.url}`);
    if (!site.httpRedirect) {
      response.writeHead(200, { 'content-type': 'text/html' });
      response.end(PAGE);
      return;
    }
    response.writeHead(301, { location: `https://${HOST}:${httpsPort}${request.url}` });
    response.end();
  });
  const listen = (server: Server) => new Promise<number>((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
  httpsPort = await listen(secure);
  const httpPort = await listen(plain);
  const stop = () => Promise.all([secure, plain].map((server) => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(resolve);
  })));
  return { httpsPort, httpPort, seen, stop };
}

interface Outcome { code: number; stdout: string; stderr: string }

/** `node scripts/smoke.js args`, a child process. */
function command(args: string[]): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SCRIPT, ...args], { timeout: 20000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

/** smoke(args) in this process, with what it printed; an unexpected error exits 1, as the command does. */
async function inProcess(args: string[]): Promise<Outcome> {
  let stdout = '';
  let stderr = '';
  const output = { out: (text: string) => { stdout += text; }, err: (text: string) => { stderr += text; } };
  try {
    return { code: await smokeCheck(args, output), stdout, stderr };
  } catch (error) {
    return { code: 1, stdout, stderr: `${stderr}smoke: unexpected error: ${error}\n` };
  }
}

/**
 * Runs the smoke check against `site` (in this process; `asCommand`: as a child process); its
 * exit code, output and result lines, and the requests the site saw.
 */
async function smoke(
  change: Partial<Site> = {}, extra: string[] = ['--ca', 'CA'], host = HOST, asCommand = false,
) {
  const site = await serve(change);
  const args = ['--host', host, '--address', '127.0.0.1', '--health-path', '/healthz',
    '--https-port', String(site.httpsPort), '--http-port', String(site.httpPort), '--timeout-ms', '3000',
    ...extra.map((a) => (a === 'CA' ? join(dir, 'ca.pem') : a))];
  try {
    const result = await (asCommand ? command(args) : inProcess(args));
    const lines = result.stdout.trim().split('\n').slice(1);
    const line = (check: string) =>
      lines.find((l) => l.replace(/^(ok  |FAIL) /, '').startsWith(`${check}:`)) ?? '(no line)';
    return { ...result, lines, line, seen: site.seen };
  } finally {
    await site.stop();
  }
}

test('a healthy site passes every check, one ok line each (exit 0 as a command)', async () => {
  const result = await smoke({}, ['--ca', 'CA'], HOST, true);
  expect(result.code).toBe(0);
  expect(result.stderr).toBe('');
  expect(result.lines).toEqual([
    `ok   certificate trust: chain verified against --ca ${join(dir, 'ca.pem')}`,
    `ok   certificate name: valid for ${HOST}`,
    expect.stringMatching(/^ok {3}certificate expiry: valid until \d{4}-\d\d-\d\d \((89|90) days\)$/),
    'ok   health: GET /healthz answered 200',
    'ok   front page: GET / answered 200',
    // Skips the commented-out link, the icon and the other host's stylesheet: the first asset of this host.
    'ok   static asset: GET /static/css/app.3f2a.css (stylesheet) answered 200 text/css; charset=utf-8',
    expect.stringMatching(/^ok {3}http redirect: GET http:\/\/vergabe\.test:\d+\/ redirects \(301\) to https:\/\/vergabe\.test:\d+\/$/),
  ]);
});

test('sends the host name (not the address) as Host header', async () => {
  const result = await smoke();
  expect(result.seen.length).toBeGreaterThan(3);
  for (const request of result.seen) expect(request).toMatch(/^(http )?vergabe\.test:\d+ \//);
});

test('/ redirecting to the login page passes, and the login page\'s first script is checked', async () => {
  const result = await smoke({ front: 'login-redirect' });
  expect(result.code).toBe(0);
  expect(result.line('front page')).toBe('ok   front page: GET / redirects (302) to the login page /accounts/login/?next=/, which answered 200');
  expect(result.line('static asset')).toBe('ok   static asset: GET /static/js/login.js (script) answered 200 text/javascript');
});

test('a certificate expiring in 7 days fails the expiry check (fewer than 14 days)', async () => {
  const result = await smoke({ cert: 'soon' });
  expect(result.code).toBe(1);
  expect(result.line('certificate expiry')).toMatch(/^FAIL certificate expiry: expires \d{4}-\d\d-\d\d, in [67] days \(fewer than 14\)/);
  expect(result.line('certificate trust')).toMatch(/^ok /);
});

test('a certificate for another host fails the name check', async () => {
  const result = await smoke({ cert: 'other' });
  expect(result.code).toBe(1);
  expect(result.line('certificate name')).toBe(`FAIL certificate name: not valid for ${HOST}: it is for DNS:other.test`);
});

test('a chain the system CAs do not trust fails without --ca', async () => {
  const result = await smoke({}, []);
  expect(result.code).toBe(1);
  expect(result.line('certificate trust')).toMatch(/^FAIL certificate trust: chain does not verify against the system CAs \(\w+\)/);
  expect(result.lines.filter((l) => l.startsWith('FAIL'))).toHaveLength(1);
});

test('--accept-untrusted skips only the chain trust, and says so', async () => {
  const trusted = await smoke({}, ['--accept-untrusted']);
  expect(trusted.code).toBe(0);
  expect(trusted.line('certificate trust')).toMatch(/^ok {3}certificate trust: NOT verified \(--accept-untrusted, e\.g\. a staging issuer\)/);
  const wrongHost = await smoke({ cert: 'other' }, ['--accept-untrusted']);
  expect(wrongHost.code).toBe(1);
  expect(wrongHost.line('certificate name')).toMatch(/^FAIL /);
});

test('health not answering 200 fails (exit 1 as a command)', async () => {
  const result = await smoke({ health: 503 }, ['--ca', 'CA'], HOST, true);
  expect(result.code).toBe(1);
  expect(result.line('health')).toBe('FAIL health: GET /healthz answered 503, expected 200');
});

test('a request without an answer fails at the deadline instead of hanging', async () => {
  const result = await smoke({ health: 'hang' }, ['--ca', 'CA', '--timeout-ms', '300']);
  expect(result.code).toBe(1);
  expect(result.line('health')).toBe('FAIL health: GET /healthz: no answer within 300 ms');
  expect(result.line('front page')).toMatch(/^ok /);
});

test('an asset served with the wrong content type (e.g. an HTML fallback) fails', async () => {
  const result = await smoke({ cssType: 'text/html; charset=utf-8' });
  expect(result.code).toBe(1);
  expect(result.line('static asset')).toBe('FAIL static asset: GET /static/css/app.3f2a.css (stylesheet) answered 200 '
    + 'with content type text/html; charset=utf-8, expected text/css');
});

test('a page that links no asset of this host fails the asset check', async () => {
  const result = await smoke({ front: 'page-without-assets' });
  expect(result.code).toBe(1);
  expect(result.line('static asset')).toBe(`FAIL static asset: / links no stylesheet or script of ${HOST}`);
});

test('no http-to-https redirect fails', async () => {
  const result = await smoke({ httpRedirect: false });
  expect(result.code).toBe(1);
  expect(result.line('http redirect')).toMatch(/^FAIL http redirect: GET http:\/\/vergabe\.test:\d+\/ answered 200, expected a redirect to https:\/\/vergabe\.test:\d+\/$/);
});

test('a redirect to another host is reported and never followed', async () => {
  const result = await smoke({ front: 'redirect-elsewhere' });
  expect(result.code).toBe(1);
  expect(result.line('front page')).toBe('FAIL front page: GET / redirects (302) to another host or an invalid URL '
    + '(https://login.elsewhere.test/login); not followed');
  expect(result.seen.filter((r) => r.includes('/login'))).toEqual([]);
});

test('usage errors exit 2 with the usage line', async () => {
  const usage = /^smoke: .+\nusage: node scripts\/smoke\.js --host/;
  const asCommand = await command([]);
  expect(asCommand.code).toBe(2);
  expect(asCommand.stderr).toMatch(usage);
  for (const args of [[], ['--host', HOST, '--address', 'not-an-ip', '--health-path', '/healthz'],
    ['--host', HOST, '--address', '127.0.0.1', '--health-path', 'healthz'],
    ['--host', HOST, '--address', '127.0.0.1', '--health-path', '/healthz', '--min-days', 'soon'],
    ['--host', HOST, '--address', '127.0.0.1', '--health-path', '/healthz',
      '--ca', join(dir, 'missing.pem')]]) {
    const result = await inProcess(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(usage);
  }
});
