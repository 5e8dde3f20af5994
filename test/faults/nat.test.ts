import { describe, expect, it } from 'vitest'
import type { HealthResponse, PeerReach } from '../../src/node/api/types.js'
import { waitFor } from '../../src/util/wait.js'
import { collectState, forkEvidence, NodeProcess, startNodeProcess, waitForMesh, waitForVerdicts, writeJobDir } from '../helpers/cluster.js'
import { NatLab, natLabNodeOptions, probeNatLab, type NatPlace } from '../helpers/netns.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'

const support = await probeNatLab()
if (!support.ok) console.warn(`skipping the NAT tests: ${support.reason}`)

type Network = NonNullable<HealthResponse['network']>

async function network (node: NodeProcess): Promise<Network> {
  const health = await node.api<HealthResponse>('/api/health')
  if (health.network === undefined) throw new Error(`${node.peerId} reports no network status`)
  return health.network
}

/** How `from` reaches `to`, as its /api/peers says. */
async function reach (from: NodeProcess, to: NodeProcess): Promise<PeerReach | undefined> {
  return (await from.peers()).find((p) => p.peerId === to.peerId)?.reach
}

const DIRECT: Array<PeerReach | undefined> = ['direct', 'hole-punched']

/**
 * One public node and two volunteers, each behind its own NAT router in its
 * own network namespace: one router does Linux's usual masquerade (keeps
 * ports; only replies get in), the other masquerades with random ports (a
 * "symmetric" NAT). Real `join` processes, real nftables NAT.
 */
describe.skipIf(!support.ok)('volunteers behind NAT, in network namespaces', () => {
  const teardown = useTeardown()

  it('both join through the public node\'s relay, claim and build; results reach everyone; each fetches the other\'s source through the relay; with a forwarded port a direct connection replaces the relayed one', async () => {
    const lab = await NatLab.create(teardown, { nats: ['masquerade', 'masquerade-random'] })
    const [homeA, homeB] = lab.volunteers as [NatPlace, NatPlace]
    const began = Date.now()
    const start = async (place: NatPlace, args: string[]): Promise<NodeProcess> =>
      await startNodeProcess(teardown, natLabNodeOptions(place, await tempDir(teardown, 'buildhaus-nat-'), ['--platform', 'linux-x64', ...args]))
    // The public node relays and does not build: a source stays with the volunteer that submitted it.
    const pub = await start(lab.publicNode, ['--slots', '0'])
    // The first volunteer says where its router will forward its port (as a user who opens a port does); until
    // the router does, nothing answers there, and it is reached through its relay reservation like the other.
    const forwarded = `/ip4/${homeA.router!.publicIp}/tcp/4710`
    const a = await start(homeA, ['--slots', '1', '--bootstrap', pub.address, '--announce', forwarded])
    // The second asks its router for a port mapping (--upnp); the lab's routers speak neither UPnP nor NAT-PMP,
    // so nothing is mapped and it carries on through the relay.
    const b = await start(homeB, ['--slots', '1', '--bootstrap', pub.address, '--upnp'])
    const nodes = [pub, a, b]
    await waitForMesh(nodes, { timeoutMs: 60_000 })
    const meshMs = Date.now() - began

    // The public node knows it is public and relays; each volunteer holds a reservation on it.
    await waitFor(async () => (await network(pub)).relay.reservations === 2, { timeoutMs: 30_000, what: 'both volunteers to hold a reservation on the public node' })
    expect(await network(pub)).toMatchObject({ reachability: 'public', relay: { mode: 'auto', serving: true } })
    for (const volunteer of [a, b]) {
      await waitFor(async () => (await network(volunteer)).relays.length === 1, { timeoutMs: 30_000, what: `${volunteer.peerId} to be reachable through the relay` })
      expect((await network(volunteer)).relays).toEqual([pub.peerId])
    }
    // The volunteer with nothing announced knows it is reached through the relay, and does not relay for others.
    expect(await network(b)).toMatchObject({ reachability: 'relayed', relay: { serving: false }, upnp: true })
    expect((await network(a)).reachability).toBe('public')

    // A job from each volunteer: its source is only there, so the other fetches it through the relay.
    const scratch = await tempDir(teardown, 'buildhaus-nat-jobs-')
    const submitted = Date.now()
    const fromA = await a.submit(await writeJobDir(scratch, { name: 'nat-from-a' }))
    const fromB = await b.submit(await writeJobDir(scratch, { name: 'nat-from-b' }))
    const verdicts = await waitForVerdicts(nodes, [fromA.id, fromB.id], { timeoutMs: 120_000 })
    const relayedJobsMs = Date.now() - submitted
    expect(verdicts).toEqual({ [fromA.id]: 'verified', [fromB.id]: 'verified' })
    // Both volunteers built both jobs (the public node has no slot), and every node holds every result.
    const states = await collectState(nodes)
    for (const state of states) {
      for (const id of [fromA.id, fromB.id]) expect(state.jobs.find((j) => j.id === id)?.verdict, `${id} on ${state.peerId}`).toBe('verified')
    }
    expect(forkEvidence(states)).toEqual([])
    expect((await network(a)).relayedBlobs).toMatchObject({ fetched: 1, served: 1 })
    expect((await network(b)).relayedBlobs).toMatchObject({ fetched: 1, served: 1 })

    // Neither NAT lets a hole punch through (see docs/NETWORK.md): the volunteers stay relayed to each other.
    expect(await reach(a, b)).toBe('relayed')
    expect(await reach(b, a)).toBe('relayed')
    expect((await network(a)).upgraded + (await network(b)).upgraded).toBe(0)
    expect(await reach(a, pub)).toBe('direct')

    // The first volunteer's router starts forwarding the p2p port (what the user, UPnP or NAT-PMP sets up): the
    // second volunteer's keeper, which keeps trying a relay-only member's direct addresses, gets through, the
    // direct connection replaces the relayed one on both sides, and blobs go direct.
    await lab.forwardPort(homeA)
    const upgradeBegan = Date.now()
    await waitFor(async () => DIRECT.includes(await reach(a, b)) && DIRECT.includes(await reach(b, a)), { timeoutMs: 60_000, what: 'the volunteers to connect directly' })
    const upgradeMs = Date.now() - upgradeBegan
    const how = `${String(await reach(a, b))}/${String(await reach(b, a))}`
    expect((await network(a)).upgraded + (await network(b)).upgraded).toBeGreaterThanOrEqual(1)
    await waitFor(async () => (await network(a)).connections.relayed === 0 && (await network(b)).connections.relayed === 0, { timeoutMs: 10_000, what: 'the relayed connection to be closed once a direct one is open' })
    const again = await b.submit(await writeJobDir(scratch, { name: 'nat-after-forward' }))
    expect(await waitForVerdicts(nodes, [again.id], { timeoutMs: 120_000 })).toEqual({ [again.id]: 'verified' })
    expect((await network(a)).relayedBlobs.fetched).toBe(1)

    console.log(`NAT lab: mesh of 1 public + 2 NATed volunteers formed in ${meshMs} ms; two jobs built by both volunteers, sources fetched through the relay, verified on all three in ${relayedJobsMs} ms; ` +
      `masquerade ↔ masquerade-random: no hole punch (relayed); after the masquerade volunteer's router forwarded its port: ${how} (a->b/b->a) within ${upgradeMs} ms`)
  }, 420_000)
})
