// A stream's first block is small, so that many short streams cost little; each next one is
// twice the last, up to MAX_BLOCK_BYTES, so that a long stream needs few.
const MIN_BLOCK_BYTES = 1024
const MAX_BLOCK_BYTES = 64 * 1024

/**
 * Where a stream's history keeps its events' bytes: appended into blocks off the V8 heap,
 * one after the other, never written twice, and let go oldest first. An event costs no object
 * of its own, and none that the garbage collector must promote: only its place in a block.
 * A view of a block handed out stays as it is, even once the block is let go.
 */
export class ByteBlocks {
  /** Oldest first; the first one is block number #firstBlock. */
  readonly #blocks: Buffer[] = []
  #firstBlock = 0
  #written = 0
  #nextBlockBytes = MIN_BLOCK_BYTES

  /** The number of the block the last write went to; #firstBlock - 1 before any. */
  get lastBlock (): number {
    return this.#firstBlock + this.#blocks.length - 1
  }

  /**
   * Keeps `bytes[start, end)`; returns the offset they are at, in block lastBlock. They are
   * copied in, unless they are at least a block's worth: then that range becomes a block of
   * its own, uncopied, and `bytes` must never change.
   */
  write (bytes: Buffer, start: number, end: number): number {
    const length = end - start
    if (length >= MAX_BLOCK_BYTES) {
      this.#blocks.push(bytes.subarray(start, end))
      this.#written = length
      return 0
    }
    let block = this.#blocks[this.#blocks.length - 1]
    if (block === undefined || block.length - this.#written < length) block = this.#newBlock(length)
    const offset = this.#written
    bytes.copy(block, offset, start, end)
    this.#written += length
    return offset
  }

  view (blockNumber: number, offset: number, length: number): Buffer {
    return (this.#blocks[blockNumber - this.#firstBlock] as Buffer).subarray(offset, offset + length)
  }

  /** Lets go of the blocks before this one: nothing in them is kept any more. */
  releaseBefore (blockNumber: number): void {
    while (this.#firstBlock < blockNumber) {
      this.#blocks.shift()
      this.#firstBlock++
    }
  }

  #newBlock (atLeast: number): Buffer {
    // An event larger than the largest block gets one of its own size.
    const block = Buffer.allocUnsafeSlow(Math.max(atLeast, this.#nextBlockBytes))
    this.#nextBlockBytes = Math.min(MAX_BLOCK_BYTES, this.#nextBlockBytes * 2)
    this.#blocks.push(block)
    this.#written = 0
    return block
  }
}
