import type { HistoryStore } from '../history/history-store.js'
import { mintEpoch } from '../session/event-id.js'
import type { ProxySession, SessionRegistry } from '../session/session-registry.js'
import type { ResumeSource } from './resume-source.js'
import type { NewStreamOwnership, SessionDirectory, SessionLookup } from './session-directory.js'

const NOT_SHARED: NewStreamOwnership = { ownership: undefined, bind: () => {} }

/**
 * One process: its sessions are all in its registry, and no other replica records
 * a stream, takes one over, or needs to hear of a change.
 */
export class LocalSessionDirectory implements SessionDirectory {
  readonly history: HistoryStore
  readonly available = true
  readonly #sessions: SessionRegistry
  // The memory store starts empty with every process: ids from an earlier one are told apart.
  readonly #epoch = mintEpoch()

  constructor (sessions: SessionRegistry, history: HistoryStore) {
    this.#sessions = sessions
    this.history = history
  }

  readonly epoch = (): string => this.#epoch

  async find (sessionId: string, routePath: string): Promise<SessionLookup> {
    return this.#sessions.find(sessionId, routePath) ?? 'unknown'
  }

  async reload (session: ProxySession): Promise<ProxySession | undefined> {
    return session
  }

  save (): void {}

  async markEndRequested (): Promise<void> {}

  delete (sessionId: string): undefined {
    this.#sessions.delete(sessionId)
    return undefined
  }

  async locateStream (): Promise<ResumeSource | undefined> {
    return undefined
  }

  ownNewStream (): NewStreamOwnership {
    return NOT_SHARED
  }

  onTakeover (): void {}

  noteMiss (): void {}

  async close (): Promise<void> {
    await this.history.close()
  }
}
