/** The application every object belongs to, whatever the environment. */
export const APP_NAME = 'vergabe-teilnahme';

/** What an object does for the app; part of the labels, and of selectors where it matters. */
export type Component = 'app' | 'web' | 'migrate' | 'database' | 'ingress';

/**
 * The standard labels of one object. No `app.kubernetes.io/version`: an image bump must change
 * the image lines, not the labels of every object.
 */
export function standardLabels(instance: string, component: Component): Record<string, string> {
  return {
    'app.kubernetes.io/name': APP_NAME,
    'app.kubernetes.io/instance': instance,
    'app.kubernetes.io/component': component,
    'app.kubernetes.io/part-of': APP_NAME,
    'app.kubernetes.io/managed-by': 'cdk8s',
  };
}

/**
 * The fixed, minimal selector of one component's pods. Selectors are immutable once applied,
 * so they never carry anything that may change (such as a version or a generated hash).
 */
export function selectorLabels(instance: string, component: Component): Record<string, string> {
  return {
    'app.kubernetes.io/name': APP_NAME,
    'app.kubernetes.io/instance': instance,
    'app.kubernetes.io/component': component,
  };
}

/** Prefix of this project's own annotations. */
export const ANNOTATION_PREFIX = 'vergabe-teilnahme.whywhynot.de';
