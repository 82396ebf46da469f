#!/usr/bin/env node
// @ts-check
/*
 * Smoke check of the public site, as a browser sees it (make vergabe-smoke; the deploy's last step).
 * Connects to --address but speaks to --host (TLS SNI, Host header, certificate name), so it tests
 * the ingress even before DNS points there, and tests can aim it at a local server.
 *
 *   node scripts/smoke.js --host <host> --address <ip> --health-path <path>
 *        [--https-port 443] [--http-port 80] [--ca <PEM file>] [--accept-untrusted]
 *        [--min-days 14] [--timeout-ms 10000]
 *
 * Each check prints one line, `ok   <check>: <what was seen>` or `FAIL <check>: <reason>`:
 *   certificate trust    the chain verifies against the system CAs (or only --ca when given);
 *                        --accept-untrusted (a staging issuer) skips just this part, and says so
 *   certificate name     the certificate is valid for --host
 *   certificate expiry   it is valid now and for at least --min-days more days
 *   health               GET <health-path> answers 200
 *   front page           GET / answers 200, or redirects to a login page (path containing "login")
 *                        of the same host that answers 200
 *   static asset         the first stylesheet or script of this host that the page links answers
 *                        200 with a CSS / JavaScript content type (the image's built assets are served)
 *   http redirect        http://<host>/ redirects to https://<host>/
 * Redirects are never followed to another host; every request has a deadline of --timeout-ms.
 * Exit 0 all ok, 1 a check failed, 2 usage.
 */
'use strict';
const fs = require('fs');
const http = require('http');
const https = require('https');
const net = require('net');
const tls = require('tls');

const USAGE = 'usage: node scripts/smoke.js --host <host> --address <ip> --health-path <path> '
  + '[--https-port 443] [--http-port 80] [--ca <PEM file>] [--accept-untrusted] '
  + '[--min-days 14] [--timeout-ms 10000]';
const REDIRECTS = [301, 302, 303, 307, 308];
const MAX_BODY = 2 * 1024 * 1024;
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * @typedef {object} Options
 * @property {string} host
 * @property {string} address
 * @property {string} healthPath
 * @property {number} httpsPort
 * @property {number} httpPort
 * @property {string | undefined} caFile
 * @property {Buffer | undefined} ca
 * @property {boolean} acceptUntrusted
 * @property {number} minDays
 * @property {number} timeoutMs
 */

/** @typedef {{ status: number, headers: http.IncomingHttpHeaders, body: string }} Answer */

/**
 * A run's result lines: `ok   <check>: <detail>` or `FAIL <check>: <reason>`.
 * @typedef {object} Report
 * @property {(check: string, detail: string) => void} ok
 * @property {(check: string, reason: string) => void} fail
 */

/** @typedef {{ out: (text: string) => void, err: (text: string) => void }} Output */

class UsageError extends Error {}

/**
 * @param {string[]} argv
 * @returns {Options}
 */
function parseArgs(argv) {
  /** @type {Record<string, string>} */
  const values = {};
  let acceptUntrusted = false;
  const valued = [
    '--host', '--address', '--health-path', '--https-port', '--http-port', '--ca', '--min-days', '--timeout-ms',
  ];
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--accept-untrusted') {
      acceptUntrusted = true;
    } else if (valued.includes(flag)) {
      if (i + 1 >= argv.length) throw new UsageError(`${flag} needs a value`);
      values[flag.slice(2)] = argv[++i];
    } else {
      throw new UsageError(`unknown argument ${flag}`);
    }
  }
  for (const required of ['host', 'address', 'health-path']) {
    if (!values[required]) throw new UsageError(`--${required} is required`);
  }
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(values.host)) {
    throw new UsageError(`--host ${values.host} is not a host name`);
  }
  if (!net.isIP(values.address)) throw new UsageError(`--address ${values.address} is not an IP address`);
  if (!values['health-path'].startsWith('/')) {
    throw new UsageError(`--health-path ${values['health-path']} must start with /`);
  }
  /** @param {string} name @param {number} fallback @param {number} min @param {number} max */
  const integer = (name, fallback, min, max) => {
    if (values[name] === undefined) return fallback;
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new UsageError(`--${name} ${values[name]} is not a whole number from ${min} to ${max}`);
    }
    return n;
  };
  let ca;
  if (values.ca !== undefined) {
    try {
      ca = fs.readFileSync(values.ca);
    } catch (error) {
      const code = /** @type {NodeJS.ErrnoException} */ (error).code;
      throw new UsageError(`--ca ${values.ca} cannot be read (${code})`);
    }
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) {
      throw new UsageError(`--ca ${values.ca} holds no PEM certificate`);
    }
  }
  return {
    host: values.host.toLowerCase(),
    address: values.address,
    healthPath: values['health-path'],
    httpsPort: integer('https-port', 443, 1, 65535),
    httpPort: integer('http-port', 80, 1, 65535),
    caFile: values.ca,
    ca,
    acceptUntrusted,
    minDays: integer('min-days', 14, 0, 3650),
    timeoutMs: integer('timeout-ms', 10000, 1, 600000),
  };
}

/**
 * What a browser sends as Host for this port.
 * @param {Options} o @param {number} port @param {number} defaultPort
 */
function hostHeader(o, port, defaultPort) {
  return port === defaultPort ? o.host : `${o.host}:${port}`;
}

/**
 * One GET to --address with --host as SNI and Host; never follows redirects. Trust is not
 * enforced here (the certificate checks report it), so the other checks still say what they see.
 * @param {Options} o
 * @param {'https' | 'http'} scheme
 * @param {string} path
 * @returns {Promise<Answer>}
 */
function get(o, scheme, path) {
  const port = scheme === 'https' ? o.httpsPort : o.httpPort;
  const options = {
    host: o.address,
    port,
    path,
    method: 'GET',
    agent: false,
    headers: {
      host: hostHeader(o, port, scheme === 'https' ? 443 : 80),
      'user-agent': 'vergabe-smoke',
      accept: 'text/html,text/css,application/javascript,*/*;q=0.8',
    },
    ...(scheme === 'https' ? { servername: o.host, rejectUnauthorized: false } : {}),
  };
  return new Promise((resolve, reject) => {
    const request = (scheme === 'https' ? https : http).request(options, (response) => {
      /** @type {Buffer[]} */
      const chunks = [];
      let size = 0;
      response.on('data', (/** @type {Buffer} */ chunk) => {
        size += chunk.length;
        if (size <= MAX_BODY) chunks.push(chunk);
      });
      response.on('end', () => {
        clearTimeout(deadline);
        const body = Buffer.concat(chunks).toString('utf8');
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body });
      });
      response.on('error', reject);
    });
    const deadline = setTimeout(
      () => request.destroy(new Error(`no answer within ${o.timeoutMs} ms`)), o.timeoutMs);
    request.on('error', (error) => {
      clearTimeout(deadline);
      reject(error);
    });
    request.end();
  });
}

/** @param {unknown} error */
function reason(error) {
  const e = /** @type {NodeJS.ErrnoException} */ (error);
  return e.code && !e.message.includes(e.code) ? `${e.code} ${e.message}` : e.message;
}

/**
 * Opens a TLS connection and returns the peer certificate and whether the chain verified.
 * @param {Options} o
 * @returns {Promise<{ cert: tls.DetailedPeerCertificate, authorized: boolean, error?: string }>}
 */
function peerCertificate(o) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: o.address,
      port: o.httpsPort,
      servername: o.host,
      ...(o.ca ? { ca: o.ca } : {}),
      rejectUnauthorized: false,
      // The name is checked on its own below, so that trust and name failures are told apart.
      checkServerIdentity: () => undefined,
    });
    const deadline = setTimeout(
      () => socket.destroy(new Error(`no TLS handshake within ${o.timeoutMs} ms`)), o.timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(deadline);
      const cert = socket.getPeerCertificate(true);
      const error = socket.authorizationError ? String(socket.authorizationError) : undefined;
      socket.end();
      resolve({ cert, authorized: socket.authorized, error });
    });
    socket.once('error', (error) => {
      clearTimeout(deadline);
      reject(error);
    });
  });
}

/** @param {Options} o @param {Report} r */
async function checkCertificate(o, r) {
  const where = `${o.address}:${o.httpsPort}`;
  let peer;
  try {
    peer = await peerCertificate(o);
  } catch (error) {
    r.fail('certificate trust', `no TLS connection to ${where} for ${o.host}: ${reason(error)}`);
    r.fail('certificate name', 'not checked (no TLS connection)');
    r.fail('certificate expiry', 'not checked (no TLS connection)');
    return;
  }
  const { cert } = peer;
  if (!cert || !cert.raw) {
    r.fail('certificate trust', `${where} sent no certificate`);
    return;
  }

  const against = o.caFile ? `--ca ${o.caFile}` : 'the system CAs';
  if (peer.authorized) {
    r.ok('certificate trust', `chain verified against ${against}`);
  } else if (o.acceptUntrusted) {
    r.ok('certificate trust', `NOT verified (--accept-untrusted, e.g. a staging issuer): ${peer.error}`);
  } else {
    r.fail('certificate trust', `chain does not verify against ${against} (${peer.error}); a staging issuer `
      + 'needs --accept-untrusted, a private CA --ca');
  }

  const mismatch = tls.checkServerIdentity(o.host, cert);
  if (mismatch) {
    const names = cert.subjectaltname || `CN=${cert.subject?.CN}`;
    r.fail('certificate name', `not valid for ${o.host}: it is for ${names}`);
  } else {
    r.ok('certificate name', `valid for ${o.host}`);
  }

  const now = Date.now();
  const notBefore = new Date(cert.valid_from).getTime();
  const notAfter = new Date(cert.valid_to).getTime();
  const daysLeft = Math.floor((notAfter - now) / DAY_MS);
  const until = new Date(notAfter).toISOString().slice(0, 10);
  if (Number.isNaN(notAfter) || Number.isNaN(notBefore)) {
    r.fail('certificate expiry', 'the certificate has no readable validity dates');
  } else if (notBefore > now) {
    r.fail('certificate expiry', `not valid before ${new Date(notBefore).toISOString()}`);
  } else if (notAfter - now < o.minDays * DAY_MS) {
    r.fail('certificate expiry', `expires ${until}, in ${Math.max(daysLeft, 0)} days `
      + `(fewer than ${o.minDays}); cert-manager renews 30 days ahead: check the Certificate and its order`);
  } else {
    r.ok('certificate expiry', `valid until ${until} (${daysLeft} days)`);
  }
}

/** @param {Options} o @param {Report} r */
async function checkHealth(o, r) {
  try {
    const answer = await get(o, 'https', o.healthPath);
    if (answer.status === 200) r.ok('health', `GET ${o.healthPath} answered 200`);
    else r.fail('health', `GET ${o.healthPath} answered ${answer.status}, expected 200`);
  } catch (error) {
    r.fail('health', `GET ${o.healthPath}: ${reason(error)}`);
  }
}

/**
 * The same-origin path (with query) a Location header points to, or undefined for another origin.
 * @param {Options} o @param {string} location
 */
function sameOriginPath(o, location) {
  const base = `https://${hostHeader(o, o.httpsPort, 443)}/`;
  let url;
  try {
    url = new URL(location, base);
  } catch {
    return undefined;
  }
  return url.origin === new URL(base).origin ? url.pathname + url.search : undefined;
}

/**
 * GET / and, when it redirects to a login page of this host, that page.
 * @param {Options} o
 * @param {Report} r
 * @returns {Promise<{ path: string, body: string } | undefined>} the page that answered 200
 */
async function checkFrontPage(o, r) {
  let answer;
  try {
    answer = await get(o, 'https', '/');
  } catch (error) {
    r.fail('front page', `GET /: ${reason(error)}`);
    return undefined;
  }
  if (answer.status === 200) {
    r.ok('front page', 'GET / answered 200');
    return { path: '/', body: answer.body };
  }
  if (!REDIRECTS.includes(answer.status)) {
    r.fail('front page', `GET / answered ${answer.status}, expected 200 or a redirect to the login page`);
    return undefined;
  }
  const location = String(answer.headers.location ?? '');
  const path = sameOriginPath(o, location);
  if (path === undefined) {
    r.fail('front page', `GET / redirects (${answer.status}) to another host or an invalid URL (${location}); `
      + 'not followed');
    return undefined;
  }
  if (!/login/i.test(path.split('?')[0])) {
    r.fail('front page', `GET / redirects (${answer.status}) to ${path}, which is not a login page`);
    return undefined;
  }
  let login;
  try {
    login = await get(o, 'https', path);
  } catch (error) {
    r.fail('front page', `GET / redirects to ${path}, and GET ${path}: ${reason(error)}`);
    return undefined;
  }
  if (login.status !== 200) {
    r.fail('front page', `GET / redirects to ${path}, which answered ${login.status}, expected 200`);
    return undefined;
  }
  r.ok('front page', `GET / redirects (${answer.status}) to the login page ${path}, which answered 200`);
  return { path, body: login.body };
}

/**
 * The stylesheets and scripts a page links, in document order.
 * @param {string} html
 * @returns {Array<{ kind: 'stylesheet' | 'script', ref: string }>}
 */
function linkedAssets(html) {
  const withoutComments = html.replace(/<!--[\s\S]*?-->/g, '');
  /** @type {Array<{ kind: 'stylesheet' | 'script', ref: string }>} */
  const assets = [];
  for (const tag of withoutComments.matchAll(/<(link|script)\b([^>]*)>/gi)) {
    /** @type {Record<string, string>} */
    const attributes = {};
    for (const a of tag[2].matchAll(/([^\s=/>]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g)) {
      attributes[a[1].toLowerCase()] = (a[2] ?? a[3] ?? a[4] ?? '').replace(/&amp;/g, '&');
    }
    if (tag[1].toLowerCase() === 'link' && /(^|\s)stylesheet(\s|$)/i.test(attributes.rel ?? '')
      && attributes.href) {
      assets.push({ kind: 'stylesheet', ref: attributes.href });
    } else if (tag[1].toLowerCase() === 'script' && attributes.src) {
      assets.push({ kind: 'script', ref: attributes.src });
    }
  }
  return assets;
}

const CONTENT_TYPES = {
  stylesheet: /^text\/css\s*(;|$)/i,
  script: /^(text|application)\/(javascript|ecmascript|x-javascript)\s*(;|$)/i,
};

/** @param {Options} o @param {Report} r @param {{ path: string, body: string } | undefined} page */
async function checkStaticAsset(o, r, page) {
  if (!page) {
    r.fail('static asset', 'not checked (no page answered 200)');
    return;
  }
  const pageUrl = `https://${hostHeader(o, o.httpsPort, 443)}${page.path}`;
  let asset;
  for (const candidate of linkedAssets(page.body)) {
    let url;
    try {
      url = new URL(candidate.ref, pageUrl);
    } catch {
      continue;
    }
    if (url.hostname !== o.host) continue; // e.g. a CDN: not this deployment's assets
    if (url.protocol !== 'https:') {
      r.fail('static asset', `${page.path} links ${candidate.kind} ${url.href} over ${url.protocol}; `
        + 'a browser blocks it');
      return;
    }
    asset = { kind: candidate.kind, path: url.pathname + url.search };
    break;
  }
  if (!asset) {
    r.fail('static asset', `${page.path} links no stylesheet or script of ${o.host}`);
    return;
  }
  let answer;
  try {
    answer = await get(o, 'https', asset.path);
  } catch (error) {
    r.fail('static asset', `GET ${asset.path}: ${reason(error)}`);
    return;
  }
  const type = String(answer.headers['content-type'] ?? '(none)');
  if (answer.status !== 200) {
    r.fail('static asset', `GET ${asset.path} (${asset.kind}) answered ${answer.status}, expected 200`);
  } else if (!CONTENT_TYPES[asset.kind].test(type)) {
    r.fail('static asset', `GET ${asset.path} (${asset.kind}) answered 200 with content type ${type}, `
      + `expected ${asset.kind === 'stylesheet' ? 'text/css' : 'a JavaScript type'}`);
  } else {
    r.ok('static asset', `GET ${asset.path} (${asset.kind}) answered 200 ${type}`);
  }
}

/** @param {Options} o @param {Report} r */
async function checkHttpRedirect(o, r) {
  const from = `http://${hostHeader(o, o.httpPort, 80)}/`;
  const to = `https://${hostHeader(o, o.httpsPort, 443)}/`;
  let answer;
  try {
    answer = await get(o, 'http', '/');
  } catch (error) {
    r.fail('http redirect', `GET ${from}: ${reason(error)}`);
    return;
  }
  const location = String(answer.headers.location ?? '');
  if (!REDIRECTS.includes(answer.status)) {
    r.fail('http redirect', `GET ${from} answered ${answer.status}, expected a redirect to ${to}`);
    return;
  }
  let target;
  try {
    target = new URL(location, from).href;
  } catch {
    target = location;
  }
  if (target !== to) {
    r.fail('http redirect', `GET ${from} redirects (${answer.status}) to ${location || '(no Location)'}, `
      + `expected ${to}`);
  } else {
    r.ok('http redirect', `GET ${from} redirects (${answer.status}) to ${to}`);
  }
}

/**
 * The smoke check for the command line `argv` (the arguments after the script's name): its lines
 * go to `output.out`, a usage error to `output.err`.
 * @param {string[]} argv
 * @param {Output} output
 * @returns {Promise<0 | 1 | 2>} the exit code: 0 all ok, 1 a check failed, 2 usage
 */
async function smoke(argv, output) {
  let o;
  try {
    if (argv.includes('--help')) {
      output.out(`${USAGE}\n`);
      return 0;
    }
    o = parseArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    output.err(`smoke: ${error.message}\n${USAGE}\n`);
    return 2;
  }
  let failures = 0;
  /** @type {Report} */
  const r = {
    ok: (check, detail) => output.out(`ok   ${check}: ${detail}\n`),
    fail: (check, why) => {
      failures++;
      output.out(`FAIL ${check}: ${why}\n`);
    },
  };
  output.out(`smoke check of https://${o.host}/ via ${o.address}\n`);
  await checkCertificate(o, r);
  await checkHealth(o, r);
  await checkStaticAsset(o, r, await checkFrontPage(o, r));
  await checkHttpRedirect(o, r);
  return failures > 0 ? 1 : 0;
}

if (require.main === module) {
  /** @type {Output} */
  const output = { out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text) };
  smoke(process.argv.slice(2), output).then((code) => process.exit(code), (error) => {
    process.stderr.write(`smoke: unexpected error: ${reason(error)}\n`);
    process.exit(1);
  });
}

module.exports = { smoke };
