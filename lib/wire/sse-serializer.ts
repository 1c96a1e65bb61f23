import type { SseEvent } from './sse-event.js'

const LINE_BREAK = /\r\n|\r|\n/g
// A field value may not break its line.
const BREAKS_LINE = /[\r\n]/g
// And a NUL makes EventSource ignore an id (WHATWG HTML, "Server-sent events"); elsewhere it is only text.
const FORBIDDEN_IN_ID = /[\r\n\0]/g

export function serializeEvent (event: SseEvent): string {
  let text = ''
  if (event.event !== undefined && event.event !== '') text += `event: ${toFieldValue(event.event)}\n`
  if (event.id !== undefined) text += `id: ${toIdValue(event.id)}\n`
  return `${text}data: ${toDataLines(event.data)}\n\n`
}

/** An event under an id the proxy minted itself, which needs no check: the hot path. */
export function serializeWithProxyId (proxyId: string, event: SseEvent): string {
  const type = event.event === undefined || event.event === '' ? '' : `event: ${toFieldValue(event.event)}\n`
  return `${type}id: ${proxyId}\ndata: ${toDataLines(event.data)}\n\n`
}

export function serializeComment (comment: string): string {
  return `: ${toFieldValue(comment)}\n\n`
}

export function serializeRetry (milliseconds: number): string {
  return `retry: ${Math.max(0, Math.trunc(milliseconds))}\n\n`
}

function toFieldValue (value: string): string {
  return value.includes('\n') || value.includes('\r') ? value.replace(BREAKS_LINE, '') : value
}

function toIdValue (value: string): string {
  return value.includes('\n') || value.includes('\r') || value.includes('\0') ? value.replace(FORBIDDEN_IN_ID, '') : value
}

function toDataLines (data: string): string {
  // Two includes() beat one /[\r\n]/ test: they scan without a regexp's setup.
  return data.includes('\n') || data.includes('\r') ? data.replace(LINE_BREAK, '\ndata: ') : data
}
