/** What a live channel carries: an event the owner recorded, or the end of the stream. */
export interface LiveListener {
  readonly onEvent: (seq: number, text: string) => void
  readonly onEnd: () => void
  /** The feed reconnected: messages may have been lost meanwhile. */
  readonly resync: () => void
}

/** The live events of the streams other replicas record, by channel (ClusterStore.liveChannelOf). */
export interface LiveFeed {
  /** Resolves once the channel is listened to; the function it gives stops listening. */
  listen: (channel: string, listener: LiveListener) => Promise<() => void>
}
