import { join } from 'path';

/**
 * The repository's root folder. A module of its own, so that a test that needs only this does not
 * load the chart code (and cdk8s) through ./helpers.
 */
export const ROOT = join(__dirname, '..');
