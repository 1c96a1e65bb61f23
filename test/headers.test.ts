import t from 'tap'
import { firstHeaderValue, withoutHopByHop } from '../lib/upstream/headers.js'

t.test('withoutHopByHop drops the RFC 9110 hop-by-hop fields and those the Connection header names', async (t) => {
  const headers = {
    connection: 'Keep-Alive, X-Hop , ',
    'keep-alive': 'timeout=5',
    'x-hop': '1',
    te: 'trailers',
    upgrade: 'h2c',
    'transfer-encoding': 'chunked',
    'proxy-authorization': 'Basic x',
    'x-end-to-end': 'kept',
    'mcp-session-id': 'kept-too'
  }
  t.same(withoutHopByHop(headers), { 'x-end-to-end': 'kept', 'mcp-session-id': 'kept-too' })
  t.equal(headers['x-hop'], '1', 'the input is not modified')
  t.same(withoutHopByHop({ connection: ['close'], a: '1' }), { a: '1' })
})

t.test('firstHeaderValue takes the first of a repeated header', async (t) => {
  t.equal(firstHeaderValue(['a', 'b']), 'a')
  t.equal(firstHeaderValue('a'), 'a')
  t.equal(firstHeaderValue(undefined), undefined)
})
