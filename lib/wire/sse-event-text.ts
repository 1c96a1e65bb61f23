import { createParser } from 'eventsource-parser'
import type { SseEvent } from './sse-event.js'

/** The one event a recorded text holds, as a client reads it; undefined when it holds none. */
function eventOfText (text: string): SseEvent | undefined {
  let found: SseEvent | undefined
  createParser({ onEvent: (event) => { found ??= event } }).feed(text)
  return found
}

/** Whether two recorded texts read back as the same event: type, data and id. */
export function sameEventText (a: string, b: string): boolean {
  const first = eventOfText(a)
  const second = eventOfText(b)
  return first !== undefined && second !== undefined &&
    first.id === second.id && first.data === second.data && (first.event ?? 'message') === (second.event ?? 'message')
}
