import { Document, isScalar, parseDocument, Scalar } from 'yaml';
import { ConfigError, Environment, parseEnvironment } from './config';

/*
 * The image bump: a new image for one environment, written into its `config/<environment>.yaml`
 * so that the file stays the operator's file. Every comment, blank line and the layout outside
 * the two values are kept byte for byte, and the result is checked against the one schema
 * before anyone writes it.
 */

/** The image an environment should run. */
export interface ImageVersion {
  /** The app repository's commit the image was built from (`image.tag`). */
  readonly tag: string;
  /**
   * The registry's digest of the pushed image (`image.digest`, `sha256:...`), which pins the
   * exact bytes. A new tag without a digest clears the old one: it belonged to the old tag.
   * @default null
   */
  readonly digest?: string | null;
}

/** What a bump does to the configuration. */
export interface ImageBump {
  /** The new file content. */
  readonly text: string;
  /** The environment as validated from `text`, defaults filled in. */
  readonly environment: Environment;
  /** `image.tag` and `image.digest` before the bump, as the file had them (`undefined`: absent). */
  readonly before: { readonly tag: unknown; readonly digest: unknown };
}

const IMAGE_TAG = ['image', 'tag'] as const;
const IMAGE_DIGEST = ['image', 'digest'] as const;

/** Scalar styles whose source text is exactly the value's characters, so it can be replaced in place. */
const INLINE_STYLES: readonly string[] = [Scalar.PLAIN, Scalar.QUOTE_DOUBLE, Scalar.QUOTE_SINGLE];

/** One replacement of the original text: `[start, end)` becomes `source`. */
interface Splice {
  readonly start: number;
  readonly end: number;
  readonly source: string;
}

/**
 * The YAML source of a value: a string double-quoted (a commit of only digits would otherwise
 * be read as a number; JSON's string syntax is valid YAML), `null` as `null`.
 */
function yamlSource(value: string | null): string {
  return value === null ? 'null' : JSON.stringify(value);
}

function syntaxProblems(environment: string, doc: Document): string[] {
  return doc.errors.map((e) => {
    const where = e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}: ` : '';
    const message = e.message.split('\n')[0].replace(/ at line [0-9]+, column [0-9]+:?$/, '');
    return `config ${environment}: ${where}YAML syntax error: ${message}`;
  });
}

/**
 * The replacement of an existing one-line scalar at `path`, or `undefined` when the value is
 * absent, empty or written in a form that cannot be replaced in place (block scalar, alias).
 */
function inPlace(doc: Document, path: readonly string[], value: string | null): Splice | undefined {
  const node = doc.getIn(path, true);
  if (!isScalar(node) || !node.range || !INLINE_STYLES.includes(node.type ?? '')) return undefined;
  const [start, end] = node.range;
  if (end <= start) return undefined;
  return { start, end, source: yamlSource(value) };
}

/** `value` at `path` through the Document API; the library renders the whole file again. */
function setThroughDocument(
  environment: string, doc: Document, path: readonly string[], value: string | null,
): void {
  const node = new Scalar(value);
  if (value !== null) node.type = Scalar.QUOTE_DOUBLE;
  try {
    doc.setIn(path, node);
  } catch {
    throw new ConfigError([`config ${environment}: ${path.join('.')} cannot be set: `
      + 'the file and its "image" must be mappings of settings']);
  }
}

/**
 * Sets `image.tag` and `image.digest` of one environment's configuration text and validates the
 * whole result as that environment. An existing one-line value is replaced where it stands, so
 * the rest of the file is kept byte for byte; only a key that is missing (or written as a block
 * scalar or alias) is set through the Document API, which renders the file again in the
 * library's layout. An absent `image.digest` stays absent when no digest is given (its default
 * is null). Throws the ConfigError of `parseEnvironment` (one line per problem, naming the
 * environment, field and value) or of a YAML syntax error; nothing is returned then.
 */
export function planImageBump(text: string, environment: string, image: ImageVersion): ImageBump {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) throw new ConfigError(syntaxProblems(environment, doc));
  const digest = image.digest ?? null;
  const before = { tag: doc.getIn(IMAGE_TAG), digest: doc.getIn(IMAGE_DIGEST) };

  const wanted: Array<[readonly string[], string | null]> = [[IMAGE_TAG, image.tag]];
  if (digest !== null || doc.hasIn(IMAGE_DIGEST)) wanted.push([IMAGE_DIGEST, digest]);

  const splices = wanted.map(([path, value]) => inPlace(doc, path, value));
  let result: string;
  if (splices.every((s): s is Splice => s !== undefined)) {
    result = [...splices].sort((a, b) => b.start - a.start)
      .reduce((out, s) => out.slice(0, s.start) + s.source + out.slice(s.end), text);
  } else {
    for (const [path, value] of wanted) setThroughDocument(environment, doc, path, value);
    result = doc.toString({ lineWidth: 0 });
  }

  const written = parseDocument(result, { uniqueKeys: true });
  if (written.errors.length > 0) throw new ConfigError(syntaxProblems(environment, written));
  const data: unknown = written.toJS();
  const parsed = parseEnvironment(environment, data);
  const got = parsed.config.image;
  if (got.tag !== image.tag || (got.digest ?? null) !== digest) {
    // The edit itself went wrong (e.g. an anchor elsewhere in the file): never write that.
    const [gotTag, gotDigest, tag] = [got.tag, got.digest, image.tag].map((v) => JSON.stringify(v));
    throw new Error(`image bump of ${environment}: the edited text reads image.tag ${gotTag}, `
      + `image.digest ${gotDigest} instead of ${tag}, ${JSON.stringify(digest)}`);
  }
  return { text: result, environment: parsed, before };
}

/**
 * The configuration text of `environment` with `image.tag` and `image.digest` set (see
 * planImageBump); throws a ConfigError when the result would not be a valid environment.
 */
export function bumpImage(text: string, environment: string, image: ImageVersion): string {
  return planImageBump(text, environment, image).text;
}
