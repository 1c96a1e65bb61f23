/** One Server-Sent Event as the proxy handles it (WHATWG HTML, "Server-sent events"). */
export interface SseEvent {
  /** Absent when the event has no `id:` field. */
  id?: string | undefined
  /** Absent for the default `message` type. */
  event?: string | undefined
  data: string
}
