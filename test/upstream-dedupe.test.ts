import t from 'tap'
import { UpstreamDedupe } from '../lib/session/upstream-dedupe.js'

t.test('an event is a duplicate when its id and data came on an earlier connection, within the window', async (t) => {
  const dedupe = new UpstreamDedupe(3)
  t.notOk(dedupe.isDuplicate('1', 'a'))
  t.notOk(dedupe.isDuplicate('1', 'a'), 'one connection never loses an event to its own repeat')
  dedupe.reconnected()
  t.ok(dedupe.isDuplicate('1', 'a'))
  t.notOk(dedupe.isDuplicate('1', 'b'), 'the same id with other data is a new event')
  t.notOk(dedupe.isDuplicate('2', 'a'))
  t.notOk(dedupe.isDuplicate('3', 'a'))
  t.notOk(dedupe.isDuplicate('1', 'a'), 'past the window, an old event is forgotten')
  for (let n = 10; n < 20; n++) dedupe.isDuplicate(String(n), 'x')
  dedupe.reconnected()
  t.ok(dedupe.isDuplicate('19', 'x'), 'still exact after the window has turned over many times')
  t.notOk(dedupe.isDuplicate('16', 'x'))
})
