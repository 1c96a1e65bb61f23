import { eventId, eventSeq } from '../wire/event-fields.js'
import { SseScanner } from '../wire/sse-scanner.js'
import { openEventStream, type OpenedStream } from './sse-request.js'

export interface ResumeTimings {
  /** From sending the resuming GET to reading its first event, in ms. */
  readonly samples: number[]
  /** Resumes answered `X-Resume-Status: recovered` whose first event came right after the last one seen. */
  readonly recovered: number
  readonly notRecovered: number
}

interface Position {
  id: string
  seq: number
}

/**
 * Leaves a stream and comes back with Last-Event-ID, again and again: each time
 * it reads a few events, cuts its connection, waits `awayMs` so that events pile
 * up in the proxy's history, and times the resume until its first event.
 * With `resumeUrl`, the stream is opened on `url` and every resume goes to
 * `resumeUrl`: another replica of the same Redis store, which does not read the
 * stream's upstream and serves it from Redis.
 */
export async function timeResumes (url: string, resumes: number, awayMs: number, eventsBetween: number, resumeUrl?: string): Promise<ResumeTimings> {
  const samples: number[] = []
  let recovered = 0
  let notRecovered = 0
  let position = (await readEvents(await openEventStream(url), eventsBetween)).last
  for (let index = 0; index < resumes; index++) {
    await new Promise((resolve) => setTimeout(resolve, awayMs))
    const sentAt = performance.now()
    const stream = await openEventStream(resumeUrl ?? url, { 'last-event-id': position.id })
    const read = await readEvents(stream, eventsBetween)
    samples.push(read.firstAt - sentAt)
    const resumedInOrder = stream.response.headers['x-resume-status'] === 'recovered' && read.first.seq === position.seq + 1
    if (resumedInOrder) recovered++
    else notRecovered++
    position = read.last
  }
  return { samples, recovered, notRecovered }
}

/** Reads `count` events, then cuts the connection. */
async function readEvents (stream: OpenedStream, count: number): Promise<{ first: Position, firstAt: number, last: Position }> {
  const scanner = new SseScanner()
  const seen: Position[] = []
  let firstAt = 0
  try {
    await new Promise<void>((resolve, reject) => {
      const onEvent = (chunk: Buffer, start: number, end: number): void => {
        if (seen.length === 0) firstAt = performance.now()
        seen.push({ id: eventId(chunk, start, end) ?? '', seq: eventSeq(chunk, start, end) })
      }
      stream.response.on('data', (chunk: Buffer) => {
        scanner.feed(chunk, onEvent)
        if (seen.length >= count) resolve()
      })
      stream.response.once('close', () => reject(new Error(`the stream closed after ${seen.length} events`)))
    })
  } finally {
    stream.request.destroy()
  }
  return { first: seen[0] as Position, firstAt, last: seen[seen.length - 1] as Position }
}
