const LINE_WIDTH = 100

/** Prints the client's numbers as running text, and anything else on lines of its own. */
export class SequencePrinter {
  #column = 0

  /** A number or a marker, on the running line. */
  word (text: string): void {
    if (this.#column > 0 && this.#column + text.length + 1 > LINE_WIDTH) this.#newLine()
    process.stdout.write(this.#column === 0 ? text : ` ${text}`)
    this.#column += text.length + (this.#column === 0 ? 0 : 1)
  }

  /** Text on lines of its own, between runs of numbers. */
  aside (text: string): void {
    if (this.#column > 0) this.#newLine()
    process.stdout.write(`${text}\n`)
  }

  #newLine (): void {
    process.stdout.write('\n')
    this.#column = 0
  }
}
