/**
 * The one place that names the cdk8s-plus package. cdk8s-plus-28 gets no more releases; moving
 * to a newer cdk8s-plus-XX is a change of this line (and of package.json), nothing else.
 */
export { k8s } from 'cdk8s-plus-28';
