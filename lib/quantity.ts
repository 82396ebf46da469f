const BYTE_SUFFIXES: Record<string, number> = {
  '': 1, 'k': 1e3, 'M': 1e6, 'G': 1e9, 'T': 1e12, 'Ki': 2 ** 10, 'Mi': 2 ** 20, 'Gi': 2 ** 30, 'Ti': 2 ** 40,
};

/** Millicores of a CPU quantity such as "250m" or "1.5"; undefined when it does not parse. */
export function cpuMillis(quantity: string): number | undefined {
  const match = /^([0-9]+(?:\.[0-9]+)?)(m?)$/.exec(quantity);
  if (!match) return undefined;
  const value = Number(match[1]);
  return match[2] === 'm' ? value : value * 1000;
}

/** Bytes of a memory or storage quantity such as "512Mi"; undefined when it does not parse. */
export function bytes(quantity: string): number | undefined {
  const match = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(quantity);
  if (!match) return undefined;
  return Number(match[1]) * BYTE_SUFFIXES[match[2] ?? ''];
}
