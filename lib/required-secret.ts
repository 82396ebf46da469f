/** Where the data of a Secret comes from: the SOPS files of this repository, or cert-manager. */
export type SecretSource = 'sops' | 'cert-manager';

/**
 * A Secret that the synthesized objects reference but never contain. The deploy applies the
 * `sops` ones from `secrets/<environment>/<name>.sops.yaml`; the contract check and the docs
 * read this list.
 */
export interface RequiredSecret {
  /** Namespace of the Secret. */
  readonly namespace: string;
  /** metadata.name of the Secret. */
  readonly name: string;
  /** Secret type, e.g. `Opaque` or `kubernetes.io/basic-auth`. */
  readonly type: string;
  /** The keys the objects reference (all must be present). */
  readonly keys: readonly string[];
  /** Labels the Secret must carry, e.g. `cnpg.io/reload`. */
  readonly labels?: Readonly<Record<string, string>>;
  /** Who writes the Secret. */
  readonly source: SecretSource;
  /** One line for the operator: what it is for. */
  readonly purpose: string;
}
