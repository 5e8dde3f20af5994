/** Peers a clock estimate needs at least: one peer's word alone says nothing about our clock. */
export const MIN_CLOCK_PEERS = 2

/** What the estimate reads of a live peer (a PresenceMember is one). */
export interface ClockSample {
  author: string
  /** Our clock when its last heartbeat arrived. */
  lastSeen: number
  /** Its clock when it sent that heartbeat. */
  heartbeat: { time: number }
}

export interface ClockSkew {
  /** How far this node's clock runs ahead of its peers' (negative: behind), in ms. */
  aheadMs: number
  /** How many peers' heartbeats the estimate rests on. */
  peers: number
  /** Whose: the mesh's members when enough of them are live, else every peer heard. */
  basis: 'members' | 'peers'
}

/**
 * This node's clock against its peers', from the last heartbeat of each: a
 * heartbeat carries its sender's clock (`time`), and we noted ours when it
 * arrived (`lastSeen`), so each peer gives one offset (plus the delivery's
 * few ms). The median of the members' offsets (of every peer's when fewer
 * than MIN_CLOCK_PEERS members are live): a minority of peers lying about
 * their time moves it no further than the honest ones' spread. Of two middle
 * values, the one nearer zero, so an even split never makes a skew up.
 * Undefined with fewer than MIN_CLOCK_PEERS peers.
 */
export function clockSkew (members: ClockSample[], isMember: (author: string) => boolean): ClockSkew | undefined {
  const ofMembers = members.filter((m) => isMember(m.author))
  const basis = ofMembers.length >= MIN_CLOCK_PEERS ? 'members' : 'peers'
  const chosen = basis === 'members' ? ofMembers : members
  if (chosen.length < MIN_CLOCK_PEERS) return undefined
  const offsets = chosen.map((m) => m.lastSeen - m.heartbeat.time).sort((a, b) => a - b)
  const middle = Math.floor(offsets.length / 2)
  const aheadMs = offsets.length % 2 === 1
    ? offsets[middle]!
    : [offsets[middle - 1]!, offsets[middle]!].sort((a, b) => Math.abs(a) - Math.abs(b))[0]!
  return { aheadMs, peers: chosen.length, basis }
}
