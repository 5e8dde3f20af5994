import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createSigner } from '../../src/crypto/sign.js'
import { generateNodeKey } from '../../src/crypto/keys.js'
import { LedgerStore } from '../../src/ledger/store.js'
import { foldMembership, MeshMembership, type MembershipView, type MeshDefinition } from '../../src/membership/index.js'
import type { DecodedEntry } from '../../src/ledger/entry.js'
import { codec, shuffled, World, type Author } from '../jobs/helpers.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'

/**
 * The node's live membership index against the pure fold: entries arrive in
 * batches in any order (the ledger parks out-of-order ones until their chain
 * catches up), and after every batch the live view equals the fold of what
 * the store holds.
 */
describe('MeshMembership (the live view)', () => {
  const teardown = useTeardown()

  async function store (): Promise<LedgerStore> {
    const ledger = await LedgerStore.open({ path: join(await tempDir(teardown, 'buildhaus-members-'), 'ledger'), codec, signer: createSigner(generateNodeKey()) })
    ledger.allowAppend()
    teardown(async () => { await ledger.close() })
    return ledger
  }

  async function held (ledger: LedgerStore): Promise<DecodedEntry[]> {
    const all: DecodedEntry[] = []
    for (const type of ['vouch', 'unvouch', 'revoke']) for await (const e of ledger.byType(type)) all.push(e)
    return all
  }

  it('equals the fold of the entries held after every batch, whatever the order they arrive in', async () => {
    const world = new World()
    const people: Author[] = Array.from({ length: 8 }, () => world.author())
    const definition: MeshDefinition = { v: 1, name: 'lab', founders: people.slice(0, 3).map((p) => p.key), admit: 2 }
    const script: Array<[number, number, string]> = [
      [0, 3, 'vouch'], [1, 3, 'vouch'], [3, 4, 'vouch'], [2, 4, 'vouch'], [4, 5, 'vouch'], [6, 5, 'vouch'],
      [0, 6, 'vouch'], [3, 6, 'vouch'], [1, 3, 'unvouch'], [2, 3, 'vouch'], [7, 0, 'vouch'], [4, 7, 'vouch'],
      [5, 7, 'vouch'], [2, 4, 'unvouch'], [6, 4, 'vouch'], [5, 5, 'revoke'], [1, 3, 'vouch']
    ]
    const entries = script.map(([from, to, type]) => type === 'revoke' ? people[from]!.write('revoke', {}) : people[from]!.write(type, { member: people[to]!.key }))
    for (const seed of [1, 2, 3]) {
      const ledger = await store()
      const live = new MeshMembership({ definition, ledger })
      await live.start()
      teardown(async () => { await live.stop() })
      const changes: MembershipView[] = []
      live.on('change', (evt) => { changes.push(evt.detail) })
      const order = shuffled(entries, seed)
      for (let i = 0; i < order.length; i += 3) {
        await ledger.ingest(order.slice(i, i + 3), { verified: true })
        expect(live.view()).toEqual(foldMembership(definition, await held(ledger)))
      }
      expect(live.view()).toEqual(foldMembership(definition, entries))
      expect(changes.length).toBeGreaterThan(0)
      expect(changes.at(-1)).toEqual(live.view())
    }
  })

  it('reads what the log already holds at start, and bars a key the moment the ledger proves a fork', async () => {
    const world = new World()
    const [f1, f2, x] = [world.author(), world.author(), world.author()]
    const definition: MeshDefinition = { v: 1, name: 'lab', founders: [f1.key, f2.key], admit: 2 }
    const ledger = await store()
    await ledger.ingest([f1.write('vouch', { member: x.key }), f2.write('vouch', { member: x.key })], { verified: true })
    const live = new MeshMembership({ definition, ledger })
    await live.start()
    teardown(async () => { await live.stop() })
    expect(live.isMember(x.key)).toBe(true)
    expect(live.standing(x.key)).toBe('member')
    expect(live.standing(world.author().key)).toBe('stranger')
    // f2 signs a second, different entry at its seq 0: the ledger holds the proof, f2 is barred and x falls.
    await ledger.ingest([f2.fork('vouch', { member: f1.key }, 0, null)], { verified: true })
    expect(ledger.isEquivocating(f2.key)).toBe(true)
    expect(live.isMember(f2.key)).toBe(false)
    expect(live.isMember(x.key)).toBe(false)
    expect(live.view().barred).toEqual([{ key: f2.key, reason: 'forked' }])
  })

  it('a batch of members\' vouches costs one recomputation, after the batch (a read before it sees them at once)', async () => {
    const world = new World()
    const [f1, f2] = [world.author(), world.author()]
    const ledger = await store()
    const live = new MeshMembership({ definition: { v: 1, name: 'lab', founders: [f1.key, f2.key], admit: 1 }, ledger })
    await live.start()
    teardown(async () => { await live.stop() })
    let changes = 0
    live.on('change', () => { changes++ })
    const admitted = Array.from({ length: 20 }, () => world.author())
    await ledger.ingest(admitted.map((a) => f1.write('vouch', { member: a.key })), { verified: true })
    await new Promise((resolve) => setImmediate(resolve))
    expect(changes).toBe(1)
    expect(live.members().size).toBe(22)
    await ledger.ingest([f2.write('vouch', { member: world.author().key })], { verified: true })
    expect(live.members().size).toBe(23)
  })

  it('a stranger\'s vouches cost no recomputation and change nothing; the index holds one record per (voucher, key)', async () => {
    const world = new World()
    const f1 = world.author()
    const ledger = await store()
    const live = new MeshMembership({ definition: { v: 1, name: 'lab', founders: [f1.key], admit: 1 }, ledger })
    await live.start()
    teardown(async () => { await live.stop() })
    let changes = 0
    live.on('change', () => { changes++ })
    const stranger = world.author()
    await ledger.ingest(Array.from({ length: 50 }, (_, i) => stranger.write('vouch', { member: i.toString(16).padStart(64, '0') })), { verified: true })
    expect(changes).toBe(0)
    expect(live.members().size).toBe(1)
    expect(live.indexSize).toBe(50)
  })
})
