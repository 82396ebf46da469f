/*
 * The image bump as a pure function: what it writes into config/<environment>.yaml, what it keeps
 * of the operator's file, and what it refuses.
 */
import { readFileSync } from 'fs';
import { join } from 'path';
import { parse } from 'yaml';
import { ConfigError } from '../lib/config';
import { bumpImage, planImageBump } from '../lib/image-bump';
import { ROOT } from './root';

const COMMIT = '3f2c1e0a9b8d7c6e5f4a3b2c1d0e9f8a7b6c5d4e';
const DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}`;

function committed(environment: string): string {
  return readFileSync(join(ROOT, 'config', `${environment}.yaml`), 'utf8');
}

/** Lines that differ between two texts of the same length in lines (1-based number → [old, new]). */
function changedLines(before: string, after: string, separator = '\n'): Array<[number, string, string]> {
  const a = before.split(separator);
  const b = after.split(separator);
  expect(b).toHaveLength(a.length);
  return a.flatMap((line, i) => (line === b[i] ? [] : [[i + 1, line, b[i]] as [number, string, string]]));
}

function lineOf(text: string, pattern: RegExp): number {
  return text.split('\n').findIndex((l) => pattern.test(l)) + 1;
}

function problemsOf(action: () => unknown): readonly string[] {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected a ConfigError, but nothing was thrown');
}

describe('keeps the operator\'s file', () => {
  test.each(['production', 'staging'])('%s: comments, blank lines and layout kept; only image.tag changes', (environment) => {
    const before = committed(environment);
    const after = bumpImage(before, environment, { tag: COMMIT });
    expect(changedLines(before, after)).toEqual([
      [lineOf(before, /^ {2}tag: /), '  tag: "0000000"', `  tag: "${COMMIT}"`],
    ]);
  });

  test('with a digest, only the tag and digest lines change', () => {
    const before = committed('production');
    const after = bumpImage(before, 'production', { tag: COMMIT, digest: DIGEST });
    expect(changedLines(before, after)).toEqual([
      [lineOf(before, /^ {2}tag: /), '  tag: "0000000"', `  tag: "${COMMIT}"`],
      [lineOf(before, /^ {2}digest: /), '  digest: null', `  digest: "${DIGEST}"`],
    ]);
  });

  test('a comment after the value, odd spacing and Windows line endings survive', () => {
    const before = committed('production')
      .replace('  tag: "0000000"', '  tag:   \'0000000\'   # the app commit')
      .replace(/\n/g, '\r\n');
    const after = bumpImage(before, 'production', { tag: 'abcdef0' });
    expect(changedLines(before, after, '\r\n')).toEqual([
      [lineOf(before, /^ {2}tag: /), '  tag:   \'0000000\'   # the app commit',
        '  tag:   "abcdef0"   # the app commit'],
    ]);
  });

  test('an unusual tag notation (block scalar) is rewritten through the Document API, comments kept', () => {
    const before = committed('production').replace('  tag: "0000000"', '  tag: >-\n    0000000');
    const after = bumpImage(before, 'production', { tag: COMMIT });
    expect(parse(after).image.tag).toBe(COMMIT);
    const comments = (text: string) => text.split('\n').filter((l) => l.trim().startsWith('#'));
    expect(comments(after)).toEqual(comments(before));
  });
});

describe('what it writes', () => {
  test('the tag is quoted, so a commit of only digits stays a string', () => {
    const after = bumpImage(committed('production'), 'production', { tag: '1234567' });
    expect(after).toMatch(/^ {2}tag: "1234567"$/m);
    expect(parse(after).image.tag).toBe('1234567');
  });

  test('a digest is set; a new tag without a digest clears the old tag\'s digest', () => {
    const pinned = bumpImage(committed('production'), 'production', { tag: COMMIT, digest: DIGEST });
    expect(parse(pinned).image).toEqual(expect.objectContaining({ tag: COMMIT, digest: DIGEST }));

    const next = bumpImage(pinned, 'production', { tag: 'abcdef0' });
    expect(parse(next).image).toEqual(expect.objectContaining({ tag: 'abcdef0', digest: null }));
    expect(next).toMatch(/^ {2}digest: null$/m);
    expect(bumpImage(pinned, 'production', { tag: 'abcdef0', digest: null })).toBe(next);
  });

  test('a file without image.digest gets one only when a digest is given', () => {
    const before = committed('production').replace('  digest: null\n', '');
    expect(changedLines(before, bumpImage(before, 'production', { tag: COMMIT }))).toHaveLength(1);

    const pinned = bumpImage(before, 'production', { tag: COMMIT, digest: DIGEST });
    expect(parse(pinned).image).toEqual(expect.objectContaining({ tag: COMMIT, digest: DIGEST }));
  });

  test('the plan reports the values before the bump and the validated environment', () => {
    const plan = planImageBump(committed('staging'), 'staging', { tag: COMMIT, digest: DIGEST });
    expect(plan.before).toEqual({ tag: '0000000', digest: null });
    expect(plan.environment.name).toBe('staging');
    expect(plan.environment.config.image).toEqual(expect.objectContaining({ tag: COMMIT, digest: DIGEST }));
  });
});

describe('bad input is a ConfigError naming environment, field and value', () => {
  const hash = 'a git commit hash (7 to 40 lowercase hex digits)';
  const digest = 'an image digest ("sha256:" and 64 lowercase hex digits)';
  test.each<[string, { tag: string; digest?: string }, string]>([
    ['a moving tag', { tag: 'latest' }, `config production: image.tag "latest" is not ${hash}`],
    ['upper-case hex', { tag: 'ABCDEF0' }, `config production: image.tag "ABCDEF0" is not ${hash}`],
    ['a too short commit', { tag: 'abc123' }, `config production: image.tag "abc123" is not ${hash}`],
    ['a too long commit', { tag: `${COMMIT}0` }, `config production: image.tag "${COMMIT}0" is not ${hash}`],
    ['a tag with quotes and a newline', { tag: 'a"b\n' }, `config production: image.tag "a\\"b\\n" is not ${hash}`],
    ['a digest without "sha256:"', { tag: COMMIT, digest: '0123456789abcdef'.repeat(4) },
      `config production: image.digest "${'0123456789abcdef'.repeat(4)}" is not ${digest}`],
    ['a short digest', { tag: COMMIT, digest: 'sha256:abc' },
      `config production: image.digest "sha256:abc" is not ${digest}`],
    ['an upper-case digest', { tag: COMMIT, digest: DIGEST.toUpperCase() },
      `config production: image.digest "${DIGEST.toUpperCase()}" is not ${digest}`],
  ])('%s', (_case, image, problem) => {
    expect(problemsOf(() => bumpImage(committed('production'), 'production', image))).toEqual([problem]);
  });

  test('the whole edited file is validated, not only the image', () => {
    const broken = committed('staging')
      .replace('host: vergabe-teilnahme-staging.whywhynot.de', 'host: Staging');
    expect(problemsOf(() => bumpImage(broken, 'staging', { tag: COMMIT }))).toEqual([
      'config staging: app.host "Staging" is not a fully qualified DNS name '
        + '(lowercase, dot-separated labels, no wildcard)',
    ]);
  });

  test('a YAML syntax error names the line', () => {
    const broken = `${committed('production')}broken: [\n`;
    const [problem] = problemsOf(() => bumpImage(broken, 'production', { tag: COMMIT }));
    expect(problem).toMatch(/^config production: line [0-9]+, column [0-9]+: YAML syntax error: /);
  });

  test('an image that is not a mapping', () => {
    const broken = committed('production')
      .replace(/^image:\n( {2}.*\n|\n)*/m, 'image: gitea.coulomb.social/x\n\n');
    expect(problemsOf(() => bumpImage(broken, 'production', { tag: COMMIT }))).toEqual([
      'config production: image.tag cannot be set: the file and its "image" must be mappings of settings',
    ]);
  });
});
