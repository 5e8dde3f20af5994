import { describe, expect, it } from 'vitest'
import { authorOfPeerId } from '../../src/crypto/peer-id.js'
import { LiveLogHub, LiveLogService, liveKey } from '../../src/livelog/index.js'
import { waitFor } from '../../src/util/wait.js'
import { connect, startLibp2p } from '../blobs/nodes.js'
import { useTeardown } from '../helpers/temp-home.js'

const JOB = 'a'.repeat(64)
const PLATFORM = 'linux-x64'

/**
 * The live log protocol between real libp2p nodes on loopback. Who may put
 * text in a job's live log: only the builder the follower dialled (Noise
 * authenticates it), under that builder's own key; and what it sends is
 * bounded in rate and size by the follower. Who may ask: anyone, bounded
 * per peer and in all by the builder.
 */
describe('live logs against hostile peers', () => {
  const teardown = useTeardown()

  async function node (init: ConstructorParameters<typeof LiveLogService>[1] = {}): Promise<{ hub: LiveLogHub, service: LiveLogService, author: string, libp2p: Awaited<ReturnType<typeof startLibp2p>> }> {
    const libp2p = await startLibp2p(teardown)
    const hub = new LiveLogHub()
    const author = authorOfPeerId(libp2p.peerId)
    const service = new LiveLogService({ network: libp2p, hub, self: author }, init)
    await service.start()
    teardown(async () => { await service.stop() })
    return { hub, service, author, libp2p }
  }

  it('streams a running build\'s output in order, backlog first, and ends with the run', async () => {
    const builder = await node()
    const follower = await node()
    await connect(follower.libp2p, builder.libp2p)
    const key = liveKey(JOB, PLATFORM, builder.author)
    builder.hub.open(key)
    builder.hub.append(key, 'line 1\n')
    const following = follower.service.follow(builder.libp2p.peerId, builder.author, JOB, PLATFORM, { signal: AbortSignal.timeout(10_000) })
    await waitFor(() => follower.hub.snapshot(key)?.text.includes('line 1'), { timeoutMs: 5_000, what: 'the backlog to arrive' })
    builder.hub.append(key, 'line 2\n')
    builder.hub.append(key, 'line 3\n')
    builder.hub.end(key)
    expect(await following).toEqual({ outcome: 'ended' })
    expect(follower.hub.snapshot(key)).toMatchObject({ offset: 0, text: 'line 1\nline 2\nline 3\n', ended: true })
  })

  it('a builder cannot be asked for another builder\'s log: it serves only its own slots', async () => {
    const builder = await node()
    const follower = await node()
    await connect(follower.libp2p, builder.libp2p)
    // The builder holds a slot under someone else's key (e.g. a log it follows): not served as its own.
    builder.hub.open(liveKey(JOB, PLATFORM, 'b'.repeat(64)))
    builder.hub.append(liveKey(JOB, PLATFORM, 'b'.repeat(64)), 'not mine\n')
    expect(await follower.service.follow(builder.libp2p.peerId, 'b'.repeat(64), JOB, PLATFORM, { signal: AbortSignal.timeout(10_000) })).toEqual({ outcome: 'unknown' })
    // And what the follower stores goes under the key of the peer it dialled, never another's.
    expect(follower.hub.keys()).toEqual([])
  })

  it('a claimant that floods its log is cut off at the follower\'s rate bound, with a note, and the follower carries on', async () => {
    const flooder = await node()
    const follower = await node({ rateCharsPerS: 10_000, burstChars: 20_000 })
    await connect(follower.libp2p, flooder.libp2p)
    const key = liveKey(JOB, PLATFORM, flooder.author)
    flooder.hub.open(key)
    const following = follower.service.follow(flooder.libp2p.peerId, flooder.author, JOB, PLATFORM, { signal: AbortSignal.timeout(10_000) })
    await waitFor(() => follower.hub.has(key), { timeoutMs: 5_000, what: 'the follow to start' })
    for (let i = 0; i < 20; i++) flooder.hub.append(key, 'x'.repeat(4_000))
    const outcome = await following
    expect(outcome.outcome).toBe('cut')
    const held = follower.hub.snapshot(key)!
    expect(held.text.length).toBeLessThan(30_000)
    expect(held.text).toContain('[buildhaus: live log stopped: the builder sent more than 10000 characters a second')
    expect(follower.service.stats().cut).toBe(1)
  })

  it('a claimant that sends more than the size bound in all is cut off', async () => {
    const flooder = await node()
    const follower = await node({ maxFollowChars: 50_000 })
    await connect(follower.libp2p, flooder.libp2p)
    const key = liveKey(JOB, PLATFORM, flooder.author)
    flooder.hub.open(key)
    flooder.hub.append(key, 'y'.repeat(60_000))
    const outcome = await follower.service.follow(flooder.libp2p.peerId, flooder.author, JOB, PLATFORM, { signal: AbortSignal.timeout(10_000) })
    expect(outcome).toMatchObject({ outcome: 'cut', reason: expect.stringContaining('passed 50000 characters') })
  })

  it('a stranger opening follow streams is bounded per peer and in all (answered busy)', async () => {
    const builder = await node({ maxFollowsPerPeer: 2, maxServedFollows: 3 })
    const strangers = [await node(), await node()]
    for (const s of strangers) await connect(s.libp2p, builder.libp2p)
    const key = liveKey(JOB, PLATFORM, builder.author)
    builder.hub.open(key)
    const controller = new AbortController()
    const follow = (s: typeof strangers[number]): Promise<unknown> => s.service.follow(builder.libp2p.peerId, builder.author, JOB, PLATFORM, { signal: controller.signal }).catch(() => 'aborted')
    const held = [follow(strangers[0]!), follow(strangers[0]!)]
    await waitFor(() => builder.service.stats().servedNow === 2, { timeoutMs: 5_000, what: 'two follows to be served' })
    expect(await follow(strangers[0]!)).toEqual({ outcome: 'busy' })
    held.push(follow(strangers[1]!))
    await waitFor(() => builder.service.stats().servedNow === 3, { timeoutMs: 5_000, what: 'the third follow to be served' })
    expect(await follow(strangers[1]!)).toEqual({ outcome: 'busy' })
    expect(builder.service.stats().answeredBusy).toBe(2)
    controller.abort()
    await Promise.all(held)
    await waitFor(() => builder.service.stats().servedNow === 0, { timeoutMs: 5_000, what: 'the served follows to be released' })
  })
})
