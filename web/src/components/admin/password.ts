// A random password an administrator can hand to a new user (no look-alike
// characters, 20 of them: about 115 bits).
const ALPHABET = 'abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789'

export function randomPassword(length = 20): string {
  const out: string[] = []
  const buf = new Uint32Array(length * 2)
  while (out.length < length) {
    crypto.getRandomValues(buf)
    for (const n of buf) {
      // Drop the values that would bias the modulo.
      if (n < Math.floor(2 ** 32 / ALPHABET.length) * ALPHABET.length) out.push(ALPHABET[n % ALPHABET.length]!)
      if (out.length === length) break
    }
  }
  return out.join('')
}
