import { TypedEvents } from '../util/events.js'
import { BACKLOG_CHARS, ENDED_LINGER_MS, MAX_HUB_SLOTS } from './constants.js'

/** One piece of a slot's live log: `text` starts at character `offset` of everything it printed. */
export interface LiveChunk {
  key: string
  offset: number
  text: string
}

/** A slot's log as held now: the backlog (the last BACKLOG_CHARS characters) and whether the run ended. */
export interface LiveSnapshot {
  key: string
  /** Where `text` starts in everything the slot printed (characters before it were dropped). */
  offset: number
  text: string
  ended: boolean
  /** Why it ended early, if it did (the follower gave up, the builder went away). */
  note?: string
}

export type LiveHubEvents = {
  chunk: CustomEvent<LiveChunk>
  end: CustomEvent<{ key: string, note?: string }>
}

interface Slot {
  text: string
  /** Characters dropped from the front. */
  start: number
  ended: boolean
  endedAt?: number
  note?: string
}

/**
 * The live logs this node holds: its own running builds, and remote builds
 * it follows for its API clients. Each slot keeps a bounded backlog with
 * absolute offsets, so a client that connects late (or reconnects) gets the
 * tail, then every new chunk; ended slots linger a minute, then go.
 */
export class LiveLogHub extends TypedEvents<LiveHubEvents> {
  private readonly slots = new Map<string, Slot>()
  private readonly backlogChars: number
  private readonly lingerMs: number

  constructor (options: { backlogChars?: number, lingerMs?: number } = {}) {
    super()
    this.backlogChars = options.backlogChars ?? BACKLOG_CHARS
    this.lingerMs = options.lingerMs ?? ENDED_LINGER_MS
  }

  /** Start (or restart) a slot: a new run of the same key starts from offset 0. */
  open (key: string): void {
    this.sweep()
    this.slots.delete(key)
    this.slots.set(key, { text: '', start: 0, ended: false })
  }

  append (key: string, text: string): void {
    if (text === '') return
    let slot = this.slots.get(key)
    if (slot === undefined) {
      this.open(key)
      slot = this.slots.get(key)!
    }
    if (slot.ended) return
    const offset = slot.start + slot.text.length
    slot.text += text
    if (slot.text.length > this.backlogChars) {
      const drop = slot.text.length - this.backlogChars
      slot.text = slot.text.slice(drop)
      slot.start += drop
    }
    this.emit('chunk', { key, offset, text })
  }

  end (key: string, note?: string): void {
    const slot = this.slots.get(key)
    if (slot === undefined || slot.ended) return
    slot.ended = true
    slot.endedAt = Date.now()
    if (note !== undefined) slot.note = note
    this.emit('end', { key, ...(note !== undefined ? { note } : {}) })
  }

  has (key: string): boolean {
    return this.slots.has(key)
  }

  snapshot (key: string): LiveSnapshot | undefined {
    const slot = this.slots.get(key)
    if (slot === undefined) return undefined
    return { key, offset: slot.start, text: slot.text, ended: slot.ended, ...(slot.note !== undefined ? { note: slot.note } : {}) }
  }

  /** Keys starting with `prefix` (e.g. `<job id>/`). */
  keys (prefix = ''): string[] {
    return [...this.slots.keys()].filter((key) => key.startsWith(prefix))
  }

  /** Drop ended slots past their linger time, and the oldest ended ones beyond MAX_HUB_SLOTS. */
  sweep (now = Date.now()): void {
    for (const [key, slot] of this.slots) {
      if (slot.ended && now - slot.endedAt! > this.lingerMs) this.slots.delete(key)
    }
    if (this.slots.size < MAX_HUB_SLOTS) return
    for (const [key, slot] of this.slots) {
      if (this.slots.size < MAX_HUB_SLOTS) break
      if (slot.ended) this.slots.delete(key)
    }
    // Still full of running slots (a node never runs that many): drop the oldest.
    while (this.slots.size >= MAX_HUB_SLOTS) this.slots.delete(this.slots.keys().next().value!)
  }
}

/** The hub key of one builder's run of one job platform. */
export function liveKey (job: string, platform: string, builder: string): string {
  return `${job}/${platform}/${builder}`
}

export function parseLiveKey (key: string): { job: string, platform: string, builder: string } {
  const [job = '', platform = '', builder = ''] = key.split('/')
  return { job, platform, builder }
}
