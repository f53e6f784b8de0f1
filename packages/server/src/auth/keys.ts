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

/**
 * The part of a key shown in listings to tell keys apart: its first 10 characters, and of a
 * short key chosen by hand (`RUNLOG_ADMIN_KEY`, 16 characters at least) no more than a quarter,
 * so what a listing shows leaves most of the key secret.
 * @example keyPrefix('rl_' + 40 random characters) // 'rl_' and 7 of them
 */
export function keyPrefix(key: string): string {
  return key.slice(0, Math.min(10, Math.floor(key.length / 4)));
}
