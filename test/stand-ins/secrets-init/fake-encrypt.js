// @ts-check
// Part of the sops STAND-IN (see ./sops): reads a Secret manifest on stdin, prints it with fake
// ENC[...] leaves and a sops block for the recipients of the first creation rule, and logs one JSON line per value (digest, length, class; never
// the value). Not encryption: the fake leaves are random bytes unrelated to the values.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const { loadPackage } = require('../../../scripts/ts-module');

/** yaml as the scripts load it (a kept bundle: a faster start). */
const YAML = /** @type {typeof import('yaml')} */ (loadPackage('yaml'));

const [target, log] = process.argv.slice(2);
const leak = process.env.SOPS_STANDIN_LEAK === '1';

/** @param {number} n */
const b64 = (n) => crypto.randomBytes(n).toString('base64');
/** @param {string} type */
const fakeLeaf = (type) => `ENC[AES256_GCM,data:${b64(24)},iv:${b64(32)},tag:${b64(16)},type:${type}]`;

const chunks = [];
process.stdin.on('data', (chunk) => chunks.push(chunk));
process.stdin.on('end', () => {
  const doc = YAML.parse(Buffer.concat(chunks).toString('utf8'));
  const config = YAML.parse(fs.readFileSync('.sops.yaml', 'utf8'));
  /** @type {string[]} */
  const recipients = config.creation_rules[0].key_groups[0].age;
  for (const section of ['data', 'stringData']) {
    for (const [key, value] of Object.entries(doc[section] ?? {})) {
      const text = String(value);
      fs.appendFileSync(log, `${JSON.stringify({
        file: target, section, key,
        sha256: crypto.createHash('sha256').update(text).digest('hex'),
        length: text.length,
        urlSafe: /^[A-Za-z0-9_-]+$/.test(text),
        distinct: new Set(text).size,
      })}\n`);
      if (!leak) doc[section][key] = fakeLeaf('str');
    }
  }
  doc.sops = {
    age: recipients.map((recipient) => ({
      recipient, enc: '-----BEGIN AGE ENCRYPTED FILE-----\nZmFrZQ==\n-----END AGE ENCRYPTED FILE-----\n',
    })),
    lastmodified: new Date().toISOString(),
    mac: fakeLeaf('str'),
    encrypted_regex: '^(data|stringData)$',
    version: '3.9.4',
  };
  process.stdout.write(YAML.stringify(doc));
});
