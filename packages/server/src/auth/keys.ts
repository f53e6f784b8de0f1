import { createHash, randomBytes } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function randomToken(length: number): string {
  // rejection sampling keeps every character equally likely
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248 && out.length < length) out += ALPHABET[byte % 62];
    }
  }
  return out;
}

/** A new API key: `rl_` and 40 random base62 characters (~238 bits). */
export function generateApiKey(): string {
  return `rl_${randomToken(40)}`;
}

/** A new session token for the dashboard's cookie. */
export function generateSessionToken(): string {
  return randomToken(48);
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** The part of a key shown in listings to tell keys apart. */
export function keyPrefix(key: string): string {
  return key.slice(0, 10);
}
