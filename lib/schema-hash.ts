import { createHash } from 'crypto';

/** SHA-256 of a JSON schema, to tell whether a generated validator was made from it. */
export function schemaHash(schema: unknown): string {
  return createHash('sha256').update(JSON.stringify(schema)).digest('hex');
}
