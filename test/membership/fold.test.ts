import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { foldMembership, MAX_VOUCH_TARGETS, membershipEntryRules, type MeshDefinition } from '../../src/membership/index.js'
import type { DecodedEntry } from '../../src/ledger/entry.js'
import { shuffled, World, type Author } from '../jobs/helpers.js'

function mesh (founders: Author[], admit: number): MeshDefinition {
  return { v: 1, name: 'lab', founders: founders.map((f) => f.key), admit }
}

const keys = (view: ReturnType<typeof foldMembership>): string[] => view.members.map((m) => m.key)
const sorted = (...authors: Author[]): string[] => authors.map((a) => a.key).sort()

describe('vouch and unvouch bodies', () => {
  it('are { member } and nothing else', () => {
    const problem = (body: unknown): string | undefined => {
      try {
        membershipEntryRules.vouch!.validate(body)
        return undefined
      } catch (err) {
        return (err as Error).message
      }
    }
    expect(problem({ member: 'ab'.repeat(32) })).toBeUndefined()
    expect(problem({})).toBe('member must be a public key (64 lower-case hex digits)')
    expect(problem({ member: 'AB'.repeat(32) })).toBe('member must be a public key (64 lower-case hex digits)')
    expect(problem({ member: 'ab'.repeat(32), note: 'x' })).toBe('has unknown field "note"; the body is { member }')
    expect(membershipEntryRules.unvouch!.refs).toBeUndefined()
  })
})

describe('membership: the least fixed point of the vouches', () => {
  it('founders are members; a key is admitted by `admit` members, and then its own vouches count', () => {
    const world = new World()
    const [f1, f2, f3, x, y, z] = Array.from({ length: 6 }, () => world.author()) as [Author, Author, Author, Author, Author, Author]
    const definition = mesh([f1, f2, f3], 2)
    // One vouch is not enough; two admit x.
    expect(keys(foldMembership(definition, [f1.write('vouch', { member: x.key })]))).toEqual(sorted(f1, f2, f3))
    const entries = [f1.write('vouch', { member: x.key }), f2.write('vouch', { member: x.key })]
    expect(keys(foldMembership(definition, entries))).toEqual(sorted(f1, f2, f3, x))
    // y is vouched for by x (admitted) and by z (not a member): only x's counts, so y waits…
    entries.push(x.write('vouch', { member: y.key }), z.write('vouch', { member: y.key }))
    const waiting = foldMembership(definition, entries)
    expect(keys(waiting)).toEqual(sorted(f1, f2, f3, x))
    expect(waiting.candidates).toEqual([{ key: y.key, vouchers: [x.key], needed: 1 }])
    // …until z is admitted: then z's earlier vouch for y counts too (a vouch counts once its author is a member).
    entries.push(f3.write('vouch', { member: z.key }), f1.write('vouch', { member: z.key }))
    const view = foldMembership(definition, entries)
    expect(keys(view)).toEqual(sorted(f1, f2, f3, x, y, z))
    expect(view.members.find((m) => m.key === y.key)).toEqual({ key: y.key, founder: false, vouchers: sorted(x, z) })
    expect(view.members.find((m) => m.key === f1.key)).toEqual({ key: f1.key, founder: true, vouchers: [] })
  })

  it('is the least fixed point: keys that only vouch for each other are never admitted', () => {
    const world = new World()
    const [f1, f2, s1, s2, s3] = Array.from({ length: 5 }, () => world.author()) as [Author, Author, Author, Author, Author]
    const entries = [
      s1.write('vouch', { member: s2.key }), s1.write('vouch', { member: s3.key }),
      s2.write('vouch', { member: s1.key }), s2.write('vouch', { member: s3.key }),
      s3.write('vouch', { member: s1.key }), s3.write('vouch', { member: s2.key }),
      f1.write('vouch', { member: s1.key })
    ]
    const view = foldMembership(mesh([f1, f2], 2), entries)
    expect(keys(view)).toEqual(sorted(f1, f2))
    expect(view.candidates).toEqual([{ key: s1.key, vouchers: [f1.key], needed: 1 }])
  })

  it('an unvouch withdraws a vouch (the author\'s latest word by seq counts), and membership follows', () => {
    const world = new World()
    const [f1, f2, x, y] = Array.from({ length: 4 }, () => world.author()) as [Author, Author, Author, Author]
    const entries = [f1.write('vouch', { member: x.key }), f2.write('vouch', { member: x.key }), x.write('vouch', { member: y.key }), f1.write('vouch', { member: y.key })]
    expect(keys(foldMembership(mesh([f1, f2], 2), entries))).toEqual(sorted(f1, f2, x, y))
    // f2 withdraws: x falls, and with it x's vouch for y.
    entries.push(f2.write('unvouch', { member: x.key }))
    expect(keys(foldMembership(mesh([f1, f2], 2), entries))).toEqual(sorted(f1, f2))
    // …and vouches again.
    entries.push(f2.write('vouch', { member: x.key }))
    expect(keys(foldMembership(mesh([f1, f2], 2), entries))).toEqual(sorted(f1, f2, x, y))
  })

  it('revoked and forked keys are never members and their vouches do not count, founders included', () => {
    const world = new World()
    const [f1, f2, f3, x] = Array.from({ length: 4 }, () => world.author()) as [Author, Author, Author, Author]
    const definition = mesh([f1, f2, f3], 2)
    const vouches = [f1.write('vouch', { member: x.key }), f2.write('vouch', { member: x.key })]
    expect(keys(foldMembership(definition, vouches))).toContain(x.key)
    const revoked = foldMembership(definition, [...vouches, f2.write('revoke', {})])
    expect(keys(revoked)).toEqual(sorted(f1, f3))
    expect(revoked.barred).toEqual([{ key: f2.key, reason: 'revoked' }])
    // A fork among the entries (two at one seq), or one known from elsewhere, bars the author.
    const forked = f1.fork('vouch', { member: f3.key }, 0, null)
    expect(keys(foldMembership(definition, [...vouches, forked]))).toEqual(sorted(f2, f3))
    expect(keys(foldMembership(definition, vouches, { forked: [f1.key] }))).toEqual(sorted(f2, f3))
    // A revoked key vouched for by members is barred, not a candidate.
    const gone = foldMembership(definition, [...vouches, x.write('revoke', {})])
    expect(gone.barred).toEqual([{ key: x.key, reason: 'revoked' }])
    expect(gone.candidates).toEqual([])
  })

  it('a key vouching for itself counts for nothing; entries of other types are ignored', () => {
    const world = new World()
    const [f1, x] = [world.author(), world.author()]
    const entries = [x.write('vouch', { member: x.key }), x.job(), f1.write('vouch', { member: f1.key })]
    const view = foldMembership(mesh([f1], 1), entries)
    expect(keys(view)).toEqual([f1.key])
    expect(view.candidates).toEqual([])
  })

  it(`counts only an author's first ${MAX_VOUCH_TARGETS} distinct keys`, () => {
    const world = new World()
    const f1 = world.author()
    const targets = Array.from({ length: MAX_VOUCH_TARGETS + 1 }, (_, i) => i.toString(16).padStart(64, '0'))
    const entries = targets.map((member) => f1.write('vouch', { member }))
    const view = foldMembership(mesh([f1], 1), shuffled(entries, 7))
    expect(view.members).toHaveLength(MAX_VOUCH_TARGETS + 1)
    expect(keys(view)).not.toContain(targets.at(-1))
  })

  it('is a pure function of the entries held: any order, any duplicates, the same view', () => {
    const world = new World()
    const authors = Array.from({ length: 7 }, () => world.author())
    const definition = mesh(authors.slice(0, 2), 2)
    // Random vouches and unvouches among the authors, and a revoke or two.
    fc.assert(fc.property(
      fc.array(fc.tuple(fc.nat(6), fc.nat(6), fc.constantFrom('vouch', 'vouch', 'unvouch', 'revoke')), { maxLength: 40 }),
      fc.nat(),
      (script, seed) => {
        const w = new World()
        const people = Array.from({ length: 7 }, () => w.author())
        const def: MeshDefinition = { ...definition, founders: people.slice(0, 2).map((p) => p.key) }
        const entries: DecodedEntry[] = script.map(([from, to, type]) => type === 'revoke' ? people[from]!.write('revoke', {}) : people[from]!.write(type, { member: people[to]!.key }))
        const view = foldMembership(def, entries)
        const again = foldMembership(def, [...shuffled(entries, seed), ...shuffled(entries, seed + 1).slice(0, 5)])
        expect(JSON.stringify(again)).toBe(JSON.stringify(view))
        // Every admitted non-founder has at least `admit` vouches from members.
        for (const m of view.members) if (!m.founder) expect(m.vouchers.length).toBeGreaterThanOrEqual(def.admit)
      }
    ), { numRuns: 50 })
  })
})
