import { randomBytes } from 'node:crypto'

// 192 random bits: unguessable, and well past the 128 that MCP clients are promised.
const SESSION_ID_BYTES = 24

export function mintSessionId (): string {
  return randomBytes(SESSION_ID_BYTES).toString('base64url')
}
