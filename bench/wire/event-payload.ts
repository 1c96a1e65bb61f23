/**
 * The events the bench upstream sends: MCP-like JSON-RPC notifications that carry
 * their stream position (`seq`) and the wall-clock time they were written (`t`),
 * padded to a target size. Clients read both back to check order and latency.
 */

/** Writes one whole SSE event, `id:` line and blank line included, about `eventBytes` long. */
export type EventWriter = (seq: number, timestampText: string, extraFields?: string) => string

/** Milliseconds since the epoch, with sub-millisecond precision, comparable across processes. */
export function wallClockMs (): number {
  return performance.timeOrigin + performance.now()
}

export function eventWriter (eventBytes: number): EventWriter {
  const typical = render(1_000_000, wallClockMs().toFixed(3), '', '')
  const padding = 'x'.repeat(Math.max(0, eventBytes - typical.length))
  return (seq, timestampText, extraFields = '') => render(seq, timestampText, extraFields, padding)
}

function render (seq: number, timestampText: string, extraFields: string, padding: string): string {
  return `id: ${seq}\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","logger":"bench","data":{"seq":${seq},"t":${timestampText}${extraFields},"text":"${padding}"}}}\n\n`
}
