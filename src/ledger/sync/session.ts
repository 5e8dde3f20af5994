import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import type { Stream } from '@libp2p/interface'
import { eachWithin } from '../../util/async-iter.js'
import { DeadlineError, describeError } from '../../util/errors.js'
import type { Logger } from '../../util/logger.js'
import { boundedSource } from '../../util/stream-source.js'
import { SyncProtocolError } from '../errors.js'
import { decodeForkProof, encodeForkProof, type ForkProof } from '../forks.js'
import type { Admission } from '../admission/index.js'
import type { IngestReport, LedgerStore } from '../store.js'
import {
  INGEST_PIPELINE_DEPTH, MAX_ENTRIES_PER_FRAME, MAX_FORK_PROOFS_PER_SESSION, MAX_FRAME_BYTES, MAX_HEADS,
  MAX_HEADS_PER_FRAME, MAX_STREAM_READ_BUFFER_BYTES, READ_HIGH_WATER_BYTES
} from './constants.js'
import { decodeFrame, encodeFrame, type SyncFrame } from './frames.js'
import type { HeadTriple } from './frames.js'
import { bucketOf, bucketsToExchange, collectHeads, headsOfBuckets, summarizeStore, type HeadsSummary } from './summary.js'

export interface SessionOptions {
  store: LedgerStore
  role: 'dialer' | 'listener'
  /** Dialer only: limit the session to these authors (e.g. our own, to learn our chain). */
  want?: string[]
  /**
   * The stream speaks SYNC_PROTOCOL_DIGEST: a session for every author
   * starts with the heads' digests, and sends heads only where they differ.
   */
  digests?: boolean
  frameTimeoutMs: number
  sessionTimeoutMs: number
  maxEntriesPerSession: number
  /** Bytes of entry lines one side sends per session (then `more`). */
  maxBytesPerSession: number
  /** Heads this side announces (members' first past it); default MAX_HEADS, what a peer may announce. */
  maxHeads?: number
  /** Quotas the peer's entries are charged to (shared with gossip); none in the ledger's own tests. */
  admission?: Admission
  /** Aborts the session (the service is stopping). */
  signal?: AbortSignal
  log: Logger
}

export interface SessionResult {
  /** Entries from the peer newly stored here. */
  received: number
  /** Entries sent to the peer. */
  sent: number
  /** Fork proofs learnt from the peer, or found in its entries. */
  forksLearnt: number
  forksSent: number
  /** Either side stopped at the per-session quota: another session will carry on. */
  more: boolean
  /** The digests agreed: both sides held the same heads and forks, and no head was sent. */
  inSync: boolean
  /** Heads announced to the peer. */
  headsSent: number
  /** Bytes written to the stream (frames with their length prefixes). */
  bytesSent: number
}

/** Why an entry from a peer ends the session: it cannot be an honest peer's mistake. */
const HOSTILE_REJECTIONS = new Set(['too-large', 'not-json', 'not-canonical', 'bad-shape', 'bad-signature'])

interface PeerView {
  heads: Map<string, { seq: number, id: string }>
  want: Set<string> | null
  forked: Set<string>
  /** A digest session's dialer says which buckets' heads it sent (the ones whose digests differ); null: all. */
  buckets: Set<number> | null
}

/** The peer's first frame of a session: its digest, or (a session limited by `want`, or protocol 1.0.0) its heads. */
type PeerOpening = { t: 'digest', all: string | null, buckets?: string[] } | { t: 'heads' }

/**
 * One sync session over an open stream. Both sides run the same steps:
 *
 *   digest  (SYNC_PROTOCOL_DIGEST, a session for every author): the dialer
 *            sends its digest; the listener answers with its own, and its
 *            buckets' digests when they differ; if the digests agree, `done`
 *            and close; else the heads of the differing buckets only (the
 *            dialer's heads name them), or all heads
 *   heads…  (the dialer first; the listener answers with heads limited to the dialer's `want`)
 *   entries… and fork…   what the other lacks, per author in chain order
 *   end {more}           nothing more this session (`more`: the quota cut it short)
 *   fork…                proofs found while storing the other's entries
 *   done                 then close the write side
 *
 * The read side is a pipeline (bounded read → length-prefixed frames → a
 * deadline per frame → parse → verify and store, a few frames in flight);
 * any bad frame aborts the stream. Bounded in bytes (frame size, read
 * buffer), in count (heads, entries, proofs) and in time (per frame, per
 * session).
 */
export async function runSyncSession (stream: Stream, options: SessionOptions): Promise<SessionResult> {
  const { store, log } = options
  const maxHeads = Math.min(options.maxHeads ?? MAX_HEADS, MAX_HEADS)
  const result: SessionResult = { received: 0, sent: 0, forksLearnt: 0, forksSent: 0, more: false, inSync: false, headsSent: 0, bytesSent: 0 }
  const controller = new AbortController()
  const signals = [controller.signal, AbortSignal.timeout(options.sessionTimeoutMs)]
  if (options.signal !== undefined) signals.push(options.signal)
  const signal = AbortSignal.any(signals)
  const peerOpening = deferred<PeerOpening>()
  const peerHeads = deferred<PeerView>()
  const peerEnded = deferred<void>()
  /** Whether the two digests agree; set by the write side once both are known. */
  const agreed = deferred<boolean>()
  /** Forks found while storing the peer's entries, to send back after `end`. */
  const foundForks: ForkProof[] = []
  const sentForkAuthors = new Set<string>()

  const fail = (err: unknown): Error => {
    const error = err instanceof Error ? err : new Error(String(err))
    if (!controller.signal.aborted) controller.abort(error)
    peerOpening.reject(error)
    agreed.reject(error)
    peerHeads.reject(error)
    peerEnded.reject(error)
    stream.abort(error)
    return error
  }
  const onAbort = (): void => {
    const reason: unknown = signal.reason
    fail(reason instanceof DOMException && reason.name === 'TimeoutError'
      ? new DeadlineError(`the sync session did not finish within ${options.sessionTimeoutMs} ms`)
      : reason)
  }
  signal.addEventListener('abort', onAbort, { once: true })
  stream.maxReadBufferLength = MAX_STREAM_READ_BUFFER_BYTES

  const send = async (frame: SyncFrame): Promise<void> => {
    const bytes = lp.encode.single(encodeFrame(frame), { maxDataLength: MAX_FRAME_BYTES })
    result.bytesSent += bytes.byteLength
    if (!stream.send(bytes)) await stream.onDrain({ signal })
  }

  const readSide = async (): Promise<void> => {
    const view: PeerView = { heads: new Map(), want: null, forked: new Set(), buckets: null }
    let state: 'heads' | 'digested' | 'entries' | 'ended' | 'done' = 'heads'
    let first = true
    let entriesSeen = 0
    let bytesSeen = 0
    let proofsSeen = 0
    const inflight: Array<Promise<void>> = []
    const absorb = (report: IngestReport): void => {
      const hostile = report.rejected.find((r) => HOSTILE_REJECTIONS.has(r.reason))
      if (hostile !== undefined) throw new SyncProtocolError(`the peer sent an invalid entry (${hostile.message}); closing the session`)
      for (const rejection of report.rejected) log('entry from the peer not stored: %s', rejection.message)
      result.received += report.accepted.length
      foundForks.push(...report.forks)
      result.forksLearnt += report.forks.length
    }
    await pipe(
      boundedSource(stream, { highWaterBytes: READ_HIGH_WATER_BYTES, signal }),
      (source) => lp.decode(source, { maxDataLength: MAX_FRAME_BYTES }),
      (source) => eachWithin(source, options.frameTimeoutMs, 'sync frame from the peer'),
      async (source) => {
        for await (const chunk of source) {
          const frame = decodeFrame(chunk)
          switch (frame.t) {
            case 'digest': {
              if (options.digests !== true) throw new SyncProtocolError('the peer sent a digest on a sync stream of protocol 1.0.0')
              if (!first) throw new SyncProtocolError('the peer sent a digest after its first frame')
              if (options.role === 'dialer' && options.want !== undefined) throw new SyncProtocolError('the peer sent a digest in a session limited to some authors')
              first = false
              state = 'digested'
              peerOpening.resolve(frame.buckets !== undefined ? { t: 'digest', all: frame.all, buckets: frame.buckets } : { t: 'digest', all: frame.all })
              break
            }
            case 'heads': {
              if (state !== 'heads' && state !== 'digested') throw new SyncProtocolError('the peer sent heads after its entries')
              if (first) peerOpening.resolve({ t: 'heads' })
              if (first && options.role === 'listener' && frame.want != null) view.want = new Set(frame.want)
              if (state === 'digested' && options.role === 'listener' && frame.buckets !== undefined) view.buckets = new Set(frame.buckets)
              first = false
              state = 'heads'
              for (const author of frame.forked ?? []) view.forked.add(author)
              for (const [author, seq, id] of frame.heads) view.heads.set(author, { seq, id })
              if (view.heads.size > MAX_HEADS) throw new SyncProtocolError(`the peer announced more than ${MAX_HEADS} heads`)
              if (!frame.more) {
                state = 'entries'
                peerHeads.resolve(view)
              }
              break
            }
            case 'entries': {
              if (state !== 'entries') throw new SyncProtocolError(`the peer sent entries ${state === 'heads' ? 'before its heads' : 'after saying it had finished'}`)
              entriesSeen += frame.lines.length
              if (entriesSeen > options.maxEntriesPerSession) throw new SyncProtocolError(`the peer sent more than ${options.maxEntriesPerSession} entries in one session`)
              for (const line of frame.lines) bytesSeen += line.length
              if (bytesSeen > options.maxBytesPerSession) throw new SyncProtocolError(`the peer sent more than ${options.maxBytesPerSession} bytes of entries in one session`)
              const stored = store.ingest(frame.lines, options.admission !== undefined ? { admission: options.admission } : {}).then(absorb)
              stored.catch(() => {})
              inflight.push(stored)
              if (inflight.length >= INGEST_PIPELINE_DEPTH) await inflight.shift()
              break
            }
            case 'fork': {
              if (state !== 'entries' && state !== 'ended') throw new SyncProtocolError('the peer sent a fork proof out of place')
              if (++proofsSeen > MAX_FORK_PROOFS_PER_SESSION) throw new SyncProtocolError(`the peer sent more than ${MAX_FORK_PROOFS_PER_SESSION} fork proofs`)
              let proof: ForkProof
              try {
                proof = decodeForkProof(store.codec, frame.lines.join('\n'))
              } catch (err) {
                throw new SyncProtocolError(`the peer sent an invalid fork proof: ${describeError(err)}`)
              }
              if (await store.ingestForkProof(proof.entries[0], proof.entries[1], { verified: true, ...(options.admission !== undefined ? { admission: options.admission } : {}) }) !== undefined) result.forksLearnt++
              break
            }
            case 'end': {
              if (state !== 'entries') throw new SyncProtocolError('the peer ended before sending its heads')
              await Promise.all(inflight.splice(0))
              if (frame.more) result.more = true
              state = 'ended'
              peerEnded.resolve()
              break
            }
            case 'done': {
              if (state === 'digested') {
                // The peer saw the digests agree; so must we.
                if (!await agreed.promise) throw new SyncProtocolError('the peer ended the session though its digest differs from ours')
                state = 'done'
                return
              }
              if (state !== 'ended') throw new SyncProtocolError('the peer said done before end')
              state = 'done'
              return
            }
          }
        }
      }
    )
    if ((state as string) !== 'done') throw new SyncProtocolError('the peer closed the sync stream before finishing the session')
  }

  const writeSide = async (): Promise<void> => {
    let filter: Set<string> | null
    let peer: PeerView
    /** The buckets whose heads are exchanged (null: all). */
    let buckets: Set<number> | null = null
    /** The heads announced: with buckets to exchange (and all of theirs announced), what to send is found among them rather than by reading every head again. */
    let announced: { heads: HeadTriple[], complete: boolean } = { heads: [], complete: false }
    const digestSession = options.digests === true && options.want === undefined
    if (options.role === 'dialer' && digestSession) {
      filter = null
      const mine = await summarizeStore(store, maxHeads)
      await send({ t: 'digest', all: mine.all })
      const theirs = await digestOf(peerOpening.promise)
      if (agree(mine, theirs)) return await finishInSync()
      buckets = differingBuckets(mine, theirs)
      announced = await headsOf(mine, buckets)
      await sendHeads(announced.heads, mine.forked, null, buckets)
      peer = await peerHeads.promise
    } else if (options.role === 'dialer') {
      filter = options.want !== undefined ? new Set(options.want) : null
      await sendHeads((await collect(filter)).heads, forkedIn(filter), options.want ?? null, null)
      peer = await peerHeads.promise
    } else if ((await peerOpening.promise).t === 'digest') {
      filter = null
      const mine = await summarizeStore(store, maxHeads)
      const theirs = await digestOf(peerOpening.promise)
      if (agree(mine, theirs)) {
        await send({ t: 'digest', all: mine.all })
        return await finishInSync()
      }
      // The dialer needs our buckets' digests to tell which buckets differ; it then sends their heads first, and says which.
      await send(mine.buckets !== undefined ? { t: 'digest', all: mine.all, buckets: mine.buckets } : { t: 'digest', all: mine.all })
      peer = await peerHeads.promise
      buckets = peer.buckets
      announced = await headsOf(mine, buckets)
      await sendHeads(announced.heads, mine.forked, null, buckets)
    } else {
      peer = await peerHeads.promise
      filter = peer.want
      await sendHeads((await collect(filter)).heads, forkedIn(filter), null, null)
    }
    // Past the heads this side may announce, what the peer lacks is still looked for in every chain (of those buckets), as 1.0.0 does.
    const candidates = buckets === null ? store.allHeads() : announced.complete ? asHeads(announced.heads) : headsOfBuckets(store, buckets)
    await sendEntries(peer, filter, buckets, candidates)
    const inBuckets = (author: string): boolean => buckets === null || buckets.has(bucketOf(author))
    for (const proof of await store.forks()) {
      if ((filter === null || filter.has(proof.author)) && inBuckets(proof.author) && !peer.forked.has(proof.author)) await sendFork(proof)
    }
    await send({ t: 'end', more: result.more })
    await peerEnded.promise
    for (const proof of foundForks) {
      if ((filter === null || filter.has(proof.author)) && !peer.forked.has(proof.author)) await sendFork(proof)
    }
    await send({ t: 'done' })
    await stream.close({ signal })
  }

  /** This side's heads to announce, of the authors in `filter` and the chains in `buckets` (null: all), at most `maxHeads`. */
  const collect = async (filter: Set<string> | null, buckets: Set<number> | null = null): Promise<{ heads: HeadTriple[], complete: boolean }> => {
    const onOverflow = (): void => { log('holding more than %d chains: announcing the first %d only', maxHeads, maxHeads) }
    return await collectHeads(store, { filter, buckets, maxHeads, ...(options.admission !== undefined ? { admission: options.admission } : {}), onOverflow })
  }

  const forkedIn = (filter: Set<string> | null): string[] => store.equivocatingAuthors().filter((author) => filter === null || filter.has(author))

  /** The heads of a digest session to announce: from the summary when it kept them, else read again for those buckets. */
  const headsOf = async (mine: HeadsSummary, buckets: Set<number> | null): Promise<{ heads: HeadTriple[], complete: boolean }> => {
    if (mine.heads === undefined) return await collect(null, buckets)
    return { heads: buckets === null ? mine.heads : mine.heads.filter(([author]) => buckets.has(bucketOf(author))), complete: true }
  }

  const digestOf = async (opening: Promise<PeerOpening>): Promise<{ all: string | null, buckets?: string[] }> => {
    const theirs = await opening
    if (theirs.t !== 'digest') throw new SyncProtocolError('the peer sent heads where its digest was due')
    return theirs
  }

  /** Whether both sides hold the same heads and forks (the reader checks a peer's `done` against it). */
  const agree = (mine: HeadsSummary, theirs: { all: string | null }): boolean => {
    const same = mine.all !== null && mine.all === theirs.all
    agreed.resolve(same)
    return same
  }

  /** The dialer's choice of the buckets to exchange: those whose digests differ, when both sides have them; else all (null). */
  const differingBuckets = (mine: HeadsSummary, theirs: { all: string | null, buckets?: string[] }): Set<number> | null => {
    const buckets = bucketsToExchange(mine, theirs)
    return buckets !== null && buckets.size === 0 ? null : buckets
  }

  /** The digests agree: nothing to exchange. */
  const finishInSync = async (): Promise<void> => {
    result.inSync = true
    await send({ t: 'done' })
    await stream.close({ signal })
  }

  /** Announce `mine` (already limited to `buckets`), with the equivocating authors of those buckets. */
  const sendHeads = async (mine: HeadTriple[], allForked: string[], want: string[] | null, buckets: Set<number> | null): Promise<void> => {
    const forked = allForked.filter((author) => buckets === null || buckets.has(bucketOf(author))).slice(0, MAX_HEADS_PER_FRAME)
    result.headsSent = mine.length
    let at = 0
    do {
      const heads = mine.slice(at, at + MAX_HEADS_PER_FRAME)
      at += heads.length
      const frame: SyncFrame = { t: 'heads', heads, more: at < mine.length }
      if (at <= MAX_HEADS_PER_FRAME) {
        if (want !== null) frame.want = want
        if (forked.length > 0) frame.forked = forked
        if (buckets !== null && options.role === 'dialer') frame.buckets = [...buckets].sort((x, y) => x - y)
      }
      await send(frame)
    } while (at < mine.length)
  }

  /** What the peer lacks, of the chains in `filter` and `buckets` (the others' heads agree). */
  const sendEntries = async (peer: PeerView, filter: Set<string> | null, buckets: Set<number> | null, candidates: AsyncIterable<[string, { seq: number, id: string }]>): Promise<void> => {
    let batch: string[] = []
    let batchBytes = 0
    let bytesSent = 0
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return
      await send({ t: 'entries', lines: batch })
      batch = []
      batchBytes = 0
    }
    /** Send a line unless the session's byte budget is spent; false then (and `more` is said). */
    const push = async (line: string): Promise<boolean> => {
      if (bytesSent + line.length > options.maxBytesPerSession) {
        result.more = true
        return false
      }
      if (batch.length >= MAX_ENTRIES_PER_FRAME || batchBytes + line.length + 1 > MAX_FRAME_BYTES - 64) await flush()
      batch.push(line)
      batchBytes += Buffer.byteLength(line) + 1
      bytesSent += line.length
      result.sent++
      return true
    }
    for await (const [author, mine] of candidates) {
      if (filter !== null && !filter.has(author)) continue
      if (buckets !== null && !buckets.has(bucketOf(author))) continue
      if (result.sent >= options.maxEntriesPerSession || result.more) {
        result.more = true
        break
      }
      const theirs = peer.heads.get(author)
      let from = 0
      if (theirs !== undefined) {
        if (mine.seq < theirs.seq) continue
        // The same head (the steady state): nothing to send, and no read to find it out.
        if (mine.seq === theirs.seq && mine.id === theirs.id) continue
        const atTheirs = await store.getBySeq(author, theirs.seq)
        if (atTheirs === undefined) continue
        if (atTheirs.id !== theirs.id) {
          // Their chain conflicts with ours at their head: our entry there is the evidence they need.
          await push(atTheirs.line)
          continue
        }
        if (mine.seq === theirs.seq) continue
        from = theirs.seq + 1
      }
      const budget = options.maxEntriesPerSession - result.sent
      const wanted = mine.seq - from + 1
      for await (const line of store.linesAfter(author, from - 1, { limit: Math.min(wanted, budget) })) {
        if (!await push(line)) break
      }
      if (wanted > budget) result.more = true
    }
    await flush()
  }

  const sendFork = async (proof: ForkProof): Promise<void> => {
    if (sentForkAuthors.has(proof.author) || sentForkAuthors.size >= MAX_FORK_PROOFS_PER_SESSION) return
    sentForkAuthors.add(proof.author)
    const [a, b] = encodeForkProof(proof).split('\n')
    await send({ t: 'fork', lines: [a!, b!] })
    result.forksSent++
  }

  const reading = readSide()
  const writing = writeSide()
  try {
    await Promise.all([reading, writing])
    closeLingering(stream, options.frameTimeoutMs)
    return result
  } catch (err) {
    const error = fail(err)
    await Promise.allSettled([reading, writing])
    throw error
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

/** Heads as sendEntries takes them. */
async function * asHeads (heads: HeadTriple[]): AsyncGenerator<[string, { seq: number, id: string }]> {
  for (const [author, seq, id] of heads) yield [author, { seq, id }]
}

/** After `done` the peer should close its side; one that keeps the stream open is cut off after a grace period. */
function closeLingering (stream: Stream, graceMs: number): void {
  if (stream.status !== 'open' || stream.remoteWriteStatus === 'closed') return
  const timer = setTimeout(() => { stream.abort(new SyncProtocolError('the peer kept the sync stream open after the session ended')) }, graceMs)
  timer.unref()
  stream.addEventListener('close', () => { clearTimeout(timer) }, { once: true })
}

interface Deferred<T> {
  promise: Promise<T>
  resolve: (value: T) => void
  reject: (err: Error) => void
}

function deferred<T> (): Deferred<T> {
  let resolve!: (value: T) => void
  let reject!: (err: Error) => void
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
  promise.catch(() => {})
  return { promise, resolve, reject }
}
