import type { DecodedEntry, EntryCodec } from './entry.js'
import { InvalidEntryError, type InvalidEntryReason } from './errors.js'
import { readExportFile } from './export.js'
import { sharedVerifyPool, type BatchVerifier } from './verify-pool.js'

export type AuditProblemKind =
  | InvalidEntryReason
  | 'not-utf8'
  | 'blank-line'
  | 'gap'
  | 'prev-mismatch'
  | 'out-of-order'
  | 'duplicate'
  | 'fork'
  | 'clock-not-rising'
  | 'chain-ended'

/**
 * Chain problems that say something about one author's chain (not about the
 * export's bytes): excused for an author proven to equivocate, whose entries
 * count for nothing anyway (docs/FORMAT.md §9).
 */
const CHAIN_KINDS: ReadonlySet<AuditProblemKind> = new Set(['gap', 'prev-mismatch', 'out-of-order', 'duplicate', 'clock-not-rising'])

/** One thing wrong, tied to the line (1-based) where it shows. */
export interface AuditProblem {
  line: number
  kind: AuditProblemKind
  message: string
  author?: string
  seq?: number
  id?: string
  /**
   * Set when the problem does not make the export invalid: it is the
   * author's own misbehaviour, proven by its signatures (a fork, and the
   * chain irregularities of an author that forked), or an entry after the
   * author ended its chain (a revoke). Such an author's entries are excluded
   * or ignored by every reader; the export itself is intact.
   */
  excused?: 'equivocating' | 'chain-ended'
}

/** Two valid entries by one author at one seq: proof of equivocation. */
export interface AuditFork {
  author: string
  seq: number
  ids: [string, string]
  lines: [number, number]
}

/** Seqs missing from a chain, noticed at `line`. */
export interface AuditGap {
  author: string
  line: number
  missingFrom: number
  missingTo: number
}

export interface AuditAuthor {
  entries: number
  /** Highest seq seen and its id. */
  head: { seq: number, id: string }
  types: Record<string, number>
  forked: boolean
}

export interface AuditReport {
  /**
   * True when every problem found is excused (see AuditProblem.excused): every
   * line is a valid, correctly signed entry and every chain of an author that
   * did not equivocate links up. A CLI exits 0 exactly then, 1 otherwise.
   */
  valid: boolean
  /** Lines read (a final newline does not start another). */
  lines: number
  /** Lines that are valid, correctly signed entries. */
  entries: number
  authors: Record<string, AuditAuthor>
  types: Record<string, number>
  /** In line order; at most `maxProblems` of them (problemCount counts all, excused ones included). */
  problems: AuditProblem[]
  problemCount: number
  /** Problems that make the export invalid (those not excused). */
  invalidCount: number
  forks: AuditFork[]
  /** Authors proven to equivocate (a fork in the export), sorted: every reader excludes them. */
  equivocating: string[]
  /** Authors that ended their chain (a final entry, i.e. a revoke): at which seq and line. */
  ended: Array<{ author: string, seq: number, line: number }>
  gaps: AuditGap[]
  /**
   * How signatures were checked. `every`: each line's own (failed: lines that
   * failed). `chain`: one per run of linked entries (its last), plus every
   * entry outside a run (fork sides, duplicates, entries out of order or after
   * a revoke); each other entry is proven by the next entry of its chain,
   * whose signed `prev` is its id (docs/FORMAT.md §9). `fallback`: a chain
   * audit of a file found a bad signature and read it again with every
   * signature checked, so that every bad line is named.
   */
  signatures: { mode: SignatureMode, checked: number, failed: number, fallback?: true }
}

/** Which signatures an audit checks: each line's own, or those a chain's links do not already vouch for. */
export type SignatureMode = 'every' | 'chain'

export interface AuditOptions {
  /** Signature checks; default the process-wide worker pool. */
  verifier?: BatchVerifier
  /**
   * Called for every valid, correctly signed entry, in line order, after its
   * chain was checked: the hook for checks of higher layers (e.g. per-job
   * verdicts). `problem` is set when the entry is valid but misplaced
   * (gap, fork, duplicate…). Awaited, so it may be async.
   */
  onEntry?: (entry: DecodedEntry, line: number, problem?: AuditProblem) => void | Promise<void>
  /** Most problems listed (all are counted). Default 1,000. */
  maxProblems?: number
  /**
   * `every` (default): each line's signature is checked before the line counts.
   * `chain`: only those the chain does not vouch for (AuditReport.signatures).
   * With `chain`, onEntry sees entries before the signature that proves them
   * is checked: if any fails (signatures.failed > 0, and the report is
   * invalid), entries already handed over may be unproven. auditFile then
   * reads the file again with `every`, after calling onRestart.
   */
  signatures?: SignatureMode
  /** auditFile only: called before a chain audit that found a bad signature reads the file again with every signature checked. */
  onRestart?: () => void
  /** Called every PROGRESS_LINES lines read: lines and bytes (line feeds included) so far. */
  onProgress?: (lines: number, bytes: number) => void
}

/** How often (in lines) onProgress is called: rarely enough to cost nothing. */
export const PROGRESS_LINES = 8192

/** Lines parsed and sent to the verifier together. */
const BATCH = 1024
/**
 * Batches in flight: parsing the next overlaps verifying the previous. Two
 * keep the workers fed (one verifying, one queued) while holding as few
 * parsed lines as that needs: lines that live through a garbage collection
 * are promoted, and collecting them later costs more than parsing them did.
 */
const DEPTH = 2

interface ChainState {
  lastSeq: number
  lastId: string
  lastClock: number
  /** Seq of the author's final entry (its revoke), once seen. */
  finalSeq?: number
  /** Ids and lines by seq (arrays: dense while a chain comes in seq order, as exports list it). */
  ids: string[]
  lines: number[]
  /** `chain` mode: the last entry of the current run of linked entries, whose signature is not checked yet. */
  tip?: Unchecked
  /** The author's summary, built into the report at the end. */
  entries: number
  headSeq: number
  headId: string
  types: Record<string, number>
  forked: boolean
}

/** What the chain check needs of a line that parsed (the entry itself only when onEntry wants it). */
interface Parsed {
  line: number
  author: string
  seq: number
  prev: string | null
  clock: number
  type: string
  id: string
  sig: string
  decoded?: DecodedEntry
  /** Set once its signature failed. */
  bad?: true
}

/** What checking a signature later needs of a line (not its entry: a log with many authors keeps one per author). */
type Unchecked = Pick<Parsed, 'line' | 'author' | 'seq' | 'id' | 'sig'>

const unchecked = ({ line, author, seq, id, sig }: Parsed): Unchecked => ({ line, author, seq, id, sig })

/**
 * Check an export (or any stream of entry lines): every line must be a valid
 * entry in canonical form with a good signature (so changing any byte of any
 * line is caught, and named by its line), and every author's chain must link
 * up: seq from 0 without gaps, prev the id of the entry before, each seq once
 * (two valid entries at one seq are a fork), in seq order. Signatures are
 * verified in parallel batches; chains are checked in line order. With
 * `signatures: 'chain'` only the signatures the chain's links do not vouch
 * for are checked (AuditOptions.signatures).
 */
export async function auditLines (lines: AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>, codec: EntryCodec, options: AuditOptions = {}): Promise<AuditReport> {
  const verifier = options.verifier ?? sharedVerifyPool()
  const maxProblems = options.maxProblems ?? 1000
  const onEntry = options.onEntry
  const mode = options.signatures ?? 'every'
  const report: AuditReport = { valid: true, lines: 0, entries: 0, authors: {}, types: {}, problems: [], problemCount: 0, invalidCount: 0, forks: [], equivocating: [], ended: [], gaps: [], signatures: { mode, checked: 0, failed: 0 } }
  const onProgress = options.onProgress
  let bytesRead = 0
  /** Count a line read; tell onProgress now and then. */
  const counted = (raw: string | Uint8Array): void => {
    report.lines++
    if (onProgress === undefined) return
    bytesRead += (typeof raw === 'string' ? Buffer.byteLength(raw) : raw.length) + 1
    if (report.lines % PROGRESS_LINES === 0) onProgress(report.lines, bytesRead)
  }
  const chains = new Map<string, ChainState>()
  /** Chain problems per author: excused at the end for authors proven to equivocate. */
  const chainProblems = new Map<string, number>()
  let endedCount = 0
  const decoder = new TextDecoder('utf-8', { fatal: true })

  const problem = (p: AuditProblem): AuditProblem => {
    report.problemCount++
    if (p.author !== undefined && CHAIN_KINDS.has(p.kind)) chainProblems.set(p.author, (chainProblems.get(p.author) ?? 0) + 1)
    if (p.kind === 'chain-ended') endedCount++
    if (report.problems.length < maxProblems) report.problems.push(p)
    return p
  }

  const parse = (raw: string | Uint8Array, line: number): Parsed | undefined => {
    let text: string
    if (typeof raw === 'string') {
      text = raw
    } else {
      try {
        text = decoder.decode(raw)
      } catch {
        problem({ line, kind: 'not-utf8', message: 'the line is not valid UTF-8' })
        return undefined
      }
    }
    if (text.length === 0) {
      problem({ line, kind: 'blank-line', message: 'the line is empty' })
      return undefined
    }
    let decoded: DecodedEntry
    try {
      decoded = codec.decode(text, { verify: false })
    } catch (err) {
      if (!(err instanceof InvalidEntryError)) throw err
      problem({ line, kind: err.reason, message: err.message })
      return undefined
    }
    const { author, seq, prev, clock, type, sig } = decoded.entry
    const parsed: Parsed = { line, author, seq, prev, clock, type, id: decoded.id, sig }
    if (onEntry !== undefined) parsed.decoded = decoded
    return parsed
  }

  /** Check one verified line's place in its author's chain; what onEntry returns (a promise, for an async hook). */
  const checkChain = (p: Parsed): void | Promise<void> => {
    const { line, author, seq, prev, type, id } = p
    const at = (kind: AuditProblemKind, message: string, excused?: AuditProblem['excused']): AuditProblem =>
      problem({ line, author, seq, id, kind, ...(excused !== undefined ? { excused } : {}), message })
    let misplaced: AuditProblem | undefined
    let state = chains.get(author)
    if (state === undefined) {
      state = { lastSeq: -1, lastId: '', lastClock: -1, ids: [], lines: [], entries: 0, headSeq: seq, headId: id, types: {}, forked: false }
      chains.set(author, state)
    }
    if (state.finalSeq !== undefined && seq > state.finalSeq) {
      misplaced = at('chain-ended', `author ${author} ended its chain at seq ${state.finalSeq} (it revoked its key); entry seq ${seq} comes after that and counts for nothing`, 'chain-ended')
    } else if (seq <= state.lastSeq) {
      const known = state.ids[seq]
      if (known === id) {
        misplaced = at('duplicate', `repeats entry ${id} (author ${author} seq ${seq}) of line ${state.lines[seq]}`)
      } else if (known !== undefined) {
        const first = state.lines[seq]!
        report.forks.push({ author, seq, ids: [known, id], lines: [first, line] })
        misplaced = at('fork', `author ${author} signed two different entries at seq ${seq} (lines ${first} and ${line}): it equivocates`)
      } else {
        misplaced = at('out-of-order', `entry seq ${seq} of author ${author} comes after seq ${state.lastSeq}; exports list each chain in seq order`)
        state.ids[seq] = id
        state.lines[seq] = line
      }
    } else {
      if (mode === 'chain') {
        // A run of linked entries is proven by its last entry's signature: each
        // entry's id is signed as `prev` by the next. An entry that does not link
        // ends the run before it, whose last entry must then prove itself.
        const links = seq === state.lastSeq + 1 && prev === (seq === 0 ? null : state.lastId)
        if (state.tip !== undefined && !links) checkSignature(state.tip)
        state.tip = unchecked(p)
      }
      if (seq > state.lastSeq + 1) {
        report.gaps.push({ author, line, missingFrom: state.lastSeq + 1, missingTo: seq - 1 })
        misplaced = at('gap', `author ${author} jumps from seq ${state.lastSeq} to ${seq}; entries ${state.lastSeq + 1}–${seq - 1} are missing`)
      } else if (prev !== (seq === 0 ? null : state.lastId)) {
        misplaced = at('prev-mismatch', `entry seq ${seq} of author ${author} names ${prev ?? 'no'} previous entry, but seq ${seq - 1} is ${state.lastId}`)
      } else if (seq > 0 && p.clock <= state.lastClock) {
        misplaced = at('clock-not-rising', `entry seq ${seq} of author ${author} has clock ${p.clock}, not above seq ${seq - 1}'s ${state.lastClock}: a chain's clock must rise`)
      }
      if (codec.isFinal(type)) {
        state.finalSeq = seq
        report.ended.push({ author, seq, line })
      }
      state.lastSeq = seq
      state.lastId = id
      state.lastClock = p.clock
      state.ids[seq] = id
      state.lines[seq] = line
    }
    // Outside the run (a fork's second side, a duplicate, out of order, after a revoke): nothing vouches for it.
    if (mode === 'chain' && misplaced !== undefined && state.tip?.line !== line) checkSignature(unchecked(p))
    state.entries++
    if (seq >= state.headSeq) {
      state.headSeq = seq
      state.headId = id
    }
    state.types[type] = (state.types[type] ?? 0) + 1
    if (misplaced?.kind === 'fork') state.forked = true
    report.types[type] = (report.types[type] ?? 0) + 1
    report.entries++
    if (onEntry !== undefined) return onEntry(p.decoded!, line, misplaced)
  }

  const badSignature = (p: Unchecked): void => {
    report.signatures.failed++
    problem({ line: p.line, kind: 'bad-signature', author: p.author, seq: p.seq, id: p.id, message: `the signature of entry ${p.id} does not verify against its author ${p.author}` })
  }

  // `chain` mode: the signatures still to check, verified in batches while reading goes on.
  let toCheck: Unchecked[] = []
  const checking: Array<Promise<void>> = []
  const flushChecks = (): void => {
    const batch = toCheck
    toCheck = []
    report.signatures.checked += batch.length
    checking.push(verifier.verifyBatch(batch).then((ok) => { batch.forEach((p, i) => { if (ok[i] !== true) badSignature(p) }) }))
  }
  function checkSignature (p: Unchecked): void {
    toCheck.push(p)
    if (toCheck.length >= BATCH) flushChecks()
  }

  /** Parse a batch now, start verifying it, and hand back what finishes it in order. */
  const start = (batch: Array<string | Uint8Array>, firstLine: number): Promise<Parsed[]> => {
    const parsed: Parsed[] = []
    for (let i = 0; i < batch.length; i++) {
      const p = parse(batch[i]!, firstLine + i)
      if (p !== undefined) parsed.push(p)
    }
    report.signatures.checked += parsed.length
    return verifier.verifyBatch(parsed).then((ok) => {
      parsed.forEach((p, i) => {
        if (ok[i] === true) return
        badSignature(p)
        p.bad = true
      })
      return parsed
    })
  }

  /** `chain` mode: lines are checked as they are read; signatures wait for the end of their run. */
  const readChained = async (): Promise<void> => {
    for await (const raw of lines) {
      counted(raw)
      const p = parse(raw, report.lines)
      if (p === undefined) continue
      const pending = checkChain(p)
      if (pending !== undefined) await pending
      if (checking.length > DEPTH) await checking.shift()
    }
    for (const state of chains.values()) if (state.tip !== undefined) checkSignature(state.tip)
    if (toCheck.length > 0) flushChecks()
    await Promise.all(checking)
  }

  /** The report, once every line is read and every signature checked. */
  const finish = (): AuditReport => {
    for (const [author, state] of chains) {
      report.authors[author] = { entries: state.entries, head: { seq: state.headSeq, id: state.headId }, types: state.types, forked: state.forked }
    }
    // Problems are found out of line order (parsing runs ahead of chain checks; a run's signature is checked at its end).
    report.problems.sort((a, b) => a.line - b.line)
    // An author proven to equivocate is excluded by every reader: its fork and its chain's
    // irregularities are reported, but they say nothing about the integrity of the export.
    const equivocating = new Set(report.forks.map((f) => f.author))
    report.equivocating = [...equivocating].sort()
    let excused = endedCount + report.forks.length
    for (const author of equivocating) excused += chainProblems.get(author) ?? 0
    for (const p of report.problems) {
      if (p.author !== undefined && equivocating.has(p.author) && (p.kind === 'fork' || CHAIN_KINDS.has(p.kind))) p.excused = 'equivocating'
    }
    report.invalidCount = report.problemCount - excused
    report.valid = report.invalidCount === 0
    return report
  }

  if (mode === 'chain') {
    await readChained()
    return finish()
  }
  const inflight: Array<Promise<Parsed[]>> = []
  const finishOldest = async (): Promise<void> => {
    for (const parsed of await inflight.shift()!) {
      if (parsed.bad === true) continue
      const pending = checkChain(parsed)
      if (pending !== undefined) await pending
    }
  }
  let batch: Array<string | Uint8Array> = []
  let batchStart = 1
  for await (const raw of lines) {
    counted(raw)
    batch.push(raw)
    if (batch.length >= BATCH) {
      inflight.push(start(batch, batchStart))
      batchStart += batch.length
      batch = []
      if (inflight.length >= DEPTH) await finishOldest()
    }
  }
  if (batch.length > 0) inflight.push(start(batch, batchStart))
  while (inflight.length > 0) await finishOldest()
  return finish()
}

/**
 * Audit an export file. A `chain` audit that finds a bad signature reads the
 * file again with every signature checked (after options.onRestart), so the
 * report names every bad line and onEntry saw only proven entries.
 */
export async function auditFile (path: string, codec: EntryCodec, options: AuditOptions = {}): Promise<AuditReport> {
  const report = await auditLines(readExportFile(path), codec, options)
  if (report.signatures.mode !== 'chain' || report.signatures.failed === 0) return report
  options.onRestart?.()
  const checked = await auditLines(readExportFile(path), codec, { ...options, signatures: 'every' })
  checked.signatures.fallback = true
  return checked
}

/**
 * The CLI's exit code: 0 when the export is valid (forks and revoked chains
 * may be reported: their authors are excluded, the export is intact), 1 when
 * any line or chain fails its checks.
 */
export function auditExitCode (report: AuditReport): 0 | 1 {
  return report.valid ? 0 : 1
}

/** A short human-readable account of a report, for the CLI without --json. */
export function formatAuditReport (report: AuditReport): string {
  const out: string[] = []
  const authors = Object.keys(report.authors).length
  out.push(`${report.valid ? 'VALID' : 'INVALID'}: ${report.lines} lines, ${report.entries} valid entries by ${authors} author${authors === 1 ? '' : 's'}${report.equivocating.length > 0 ? `; ${report.equivocating.length} equivocating author${report.equivocating.length === 1 ? '' : 's'} excluded` : ''}`)
  const { mode, checked } = report.signatures
  out.push(mode === 'chain'
    ? `signatures: ${checked} checked, one per run of linked entries and each entry outside a run; the others are proven by the ids the next entries sign (mode \`every\` checks each line's own)`
    : `signatures: ${checked} checked, each line's own${report.signatures.fallback === true ? ' (a bad one was found, so every line was checked)' : ''}`)
  const types = Object.entries(report.types).sort(([a], [b]) => a.localeCompare(b)).map(([type, n]) => `${type} ${n}`)
  if (types.length > 0) out.push(`types: ${types.join(', ')}`)
  for (const fork of report.forks) out.push(`fork: author ${fork.author} seq ${fork.seq}: ${fork.ids[0]} (line ${fork.lines[0]}) vs ${fork.ids[1]} (line ${fork.lines[1]})`)
  for (const p of report.problems) out.push(`line ${p.line}: ${p.kind}${p.excused !== undefined ? ` (${p.excused}; not an export problem)` : ''}: ${p.message}`)
  if (report.problemCount > report.problems.length) out.push(`… and ${report.problemCount - report.problems.length} more problems (use --json for the first ${report.problems.length})`)
  return out.join('\n')
}
