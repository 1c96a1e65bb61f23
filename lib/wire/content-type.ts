/** Whether a Content-Type is `text/event-stream`, parameters and case aside. */
export function isEventStream (contentType: string | undefined): boolean {
  return contentType !== undefined && contentType.trimStart().toLowerCase().startsWith('text/event-stream')
}
