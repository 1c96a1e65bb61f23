/**
 * Where a client may stop reading a chunk so that it is cut inside an event: after
 * any character that does not end a line, so that no event in the part read is
 * complete unless it already was. Empty when the chunk offers no such place.
 */
export function midEventOffsets (chunk: string): number[] {
  const offsets: number[] = []
  for (let offset = 1; offset < chunk.length; offset++) {
    if (chunk[offset - 1] !== '\n') offsets.push(offset)
  }
  return offsets
}
