import t from 'tap'
import { UpstreamDedupe } from '../lib/session/upstream-dedupe.js'

/** A stream's recorded events as the dedupe sees them: seq → (upstream id, data). */
function recordingStream (window: number) {
  const dedupe = new UpstreamDedupe(window)
  const recorded = new Map<number, string>()
  let seq = 0
  return {
    dedupe,
    /** Records the event unless it is a duplicate; true when it was recorded. */
    offer (id: string, data: string): boolean {
      if (dedupe.isDuplicate(id, (earlierSeq) => recorded.get(earlierSeq) === data)) return false
      recorded.set(++seq, data)
      dedupe.remember(id, seq)
      return true
    }
  }
}

t.test('an event is a duplicate when an earlier connection recorded its id and data, within the window', async (t) => {
  const { dedupe, offer } = recordingStream(3)
  t.ok(offer('1', 'a'))
  t.ok(offer('1', 'a'), 'one connection never loses an event to its own repeat')
  dedupe.reconnected()
  t.notOk(offer('1', 'a'), 'sent again after a reconnect: dropped')
  t.ok(offer('1', 'b'), 'the same id with other data is a new event')
  t.ok(offer('2', 'a'))
  t.ok(offer('3', 'a'))
  t.ok(offer('4', 'a'))
  dedupe.reconnected()
  t.ok(offer('1', 'b'), 'past the window, an old event is forgotten')
  t.notOk(offer('3', 'a'), 'within it, remembered')
  for (let n = 10; n < 20; n++) offer(String(n), 'x')
  dedupe.reconnected()
  t.notOk(offer('19', 'x'), 'still exact after the window has turned over many times')
  t.ok(offer('16', 'x'))
  t.equal(dedupe.oldestRememberedSeq, 16, 'the oldest seq still in the window')
})

t.test('before anything is remembered there is nothing to compare with', async (t) => {
  const dedupe = new UpstreamDedupe(5)
  t.equal(dedupe.oldestRememberedSeq, 0)
  dedupe.reconnected()
  t.notOk(dedupe.isDuplicate('1', () => true))
})
