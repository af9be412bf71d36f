import { createHash, timingSafeEqual } from "node:crypto";

/**
 * Which of some secrets a caller presented (a service key, the metrics token), told in constant
 * time: what is given is compared, as a SHA-256 digest, with every secret's digest, so that
 * neither a secret's length, nor a matching prefix, nor which one matched shows in the timing. The
 * secrets' digests are taken once, here.
 */
export function secretMatcher<Name>(
  secrets: readonly { name: Name; secret: string }[],
): (given: string) => Name | undefined {
  const digests = secrets.map(({ name, secret }) => ({ name, digest: digestOf(secret) }));
  return (given) => {
    const digest = digestOf(given);
    let found: Name | undefined;
    for (const { name, digest: known } of digests) {
      if (timingSafeEqual(digest, known) && found === undefined) found = name;
    }
    return found;
  };
}

function digestOf(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}
