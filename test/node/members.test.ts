import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { peerIdOfAuthor } from '../../src/crypto/peer-id.js'
import { multiaddr } from '@multiformats/multiaddr'
import { formatMeshDefinition, parseMeshDefinition } from '../../src/membership/index.js'
import { hostilePeer } from '../helpers/hostile-peer.js'
import { main } from '../../src/node/cli/main.js'
import type { MembersResponse } from '../../src/node/api/routes/members.js'
import { shippedMeshFile } from '../../src/node/home/mesh.js'
import { waitFor } from '../../src/util/wait.js'
import { runCli, startNodeProcess, waitForMesh, type NodeProcess } from '../helpers/cluster.js'
import { describeJob } from '../helpers/jobs.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { testMesh } from '../helpers/test-mesh.js'
import { sortJobDir } from '../helpers/job-dir.js'

/** Run a command in this process (as the CLI would, without spawning one): its exit code and output. */
async function inProcess (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  let stdout = ''
  let stderr = ''
  const code = await main(args, {
    stdout: { write: (chunk: string | Uint8Array) => { stdout += String(chunk); return true } },
    stderr: { write: (chunk: string | Uint8Array) => { stderr += String(chunk); return true } },
    env: process.env,
    signal: AbortSignal.timeout(30_000)
  } as never)
  return { code, stdout, stderr }
}

async function members (node: NodeProcess): Promise<MembersResponse> {
  return await node.api<MembersResponse>('/api/members')
}

describe('buildhaus-node mesh init', () => {
  const teardown = useTeardown()

  it('founds a mesh with this node as founder, refuses to overwrite, and takes other founders by key or peer id', async () => {
    const home = await tempDir(teardown, 'buildhaus-founder-')
    const made = await inProcess(['mesh', 'init', '--home', home, '--name', 'acme-lab', '--json'])
    expect(made.code, made.stderr).toBe(0)
    const answer = JSON.parse(made.stdout) as { file: string, name: string, founders: string[], admit: number, self: string }
    expect(answer).toMatchObject({ file: join(home, 'mesh.json'), name: 'acme-lab', founders: [answer.self], admit: 1 })
    expect(parseMeshDefinition(await readFile(answer.file, 'utf8'), answer.file)).toEqual({ v: 1, name: 'acme-lab', founders: [answer.self], admit: 1 })

    const again = await inProcess(['mesh', 'init', '--home', home])
    expect(again.code).toBe(2)
    expect(again.stderr).toContain(`${join(home, 'mesh.json')} already exists; keep it, choose another --out, or add --force to replace it`)

    const other = testMesh().founders[63]!
    const out = join(home, 'lab.json')
    const two = await inProcess(['mesh', 'init', '--home', home, '--founder', peerIdOfAuthor(other).toString(), '--admit', '2', '--closed', '-o', out])
    expect(two.code, two.stderr).toBe(0)
    expect(two.stdout).toContain(`founded the mesh "${home.split('/').pop()!.toLowerCase()}" in ${out}`)
    expect(two.stdout).toContain('2 members\' vouches admit a key')
    expect(parseMeshDefinition(await readFile(out, 'utf8'), out)).toMatchObject({ founders: [answer.self, other], admit: 2, closed: true })

    const noOne = await inProcess(['mesh', 'init', '--home', home, '--no-self', '-o', join(home, 'x.json')])
    expect(noOne.code).toBe(2)
    expect(noOne.stderr).toContain('a mesh needs at least one founder')
    const badKey = await inProcess(['mesh', 'init', '--home', home, '--founder', 'alice', '-o', join(home, 'y.json')])
    expect(badKey.code).toBe(2)
    expect(badKey.stderr).toContain('--founder "alice" is not a key: give 64 hex digits')
    const tooMany = await inProcess(['mesh', 'init', '--home', home, '--admit', '3', '-o', join(home, 'z.json')])
    expect(tooMany.code).toBe(2)
    expect(tooMany.stderr).toContain('admit is 3 but there is 1 founder, so no key could ever be admitted')
  })

  it('join refuses a malformed mesh file before touching anything, naming the file', async () => {
    const home = await tempDir(teardown, 'buildhaus-badmesh-')
    const file = join(home, 'broken.json')
    await writeFile(file, JSON.stringify({ v: 1, name: 'lab', founders: ['nope'], admit: 1 }))
    const run = await runCli(['join', '--home', home, '--mesh', file, '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0'])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain(`${file}: founders[0] is not a public key: expected 64 lower-case hex digits, got "nope"`)
  })

  it('--trust everyone is today\'s open behaviour, chosen explicitly and warned about; the shipped mesh has no founders and says so', async () => {
    const open = await startNodeProcess(teardown, { args: ['--trust', 'everyone', '--slots', '0'] })
    expect((open.ready as unknown as { trust: string }).trust).toBe('everyone')
    await waitFor(() => open.stderr.includes('WARNING: --trust everyone'), { timeoutMs: 10_000, what: 'the warning' })
    expect((await members(open)).trust).toBe('everyone')
    expect((await runCli(['members', '--api', open.apiUrl])).stdout).toContain('this node counts EVERYONE (--trust everyone)')

    const volunteer = await startNodeProcess(teardown, { stranger: true, args: ['--mesh', shippedMeshFile(), '--slots', '0'] })
    expect((volunteer.ready as unknown as { mesh: { name: string, founders: number }, member: boolean })).toMatchObject({ mesh: { name: 'buildhaus-public', founders: 0 }, member: false })
    await waitFor(() => volunteer.stderr.includes('lists no founders yet, so no key is a member'), { timeoutMs: 10_000, what: 'the note on a mesh with no founders' })
    expect((await runCli(['members', '--api', volunteer.apiUrl])).stdout).toContain('this mesh lists no founders yet, so no key is a member')
  })
})

describe('a closed mesh (the mesh file says closed: true)', () => {
  const teardown = useTeardown()

  it('the node admits members\' connections and refuses a stranger\'s, from the log\'s membership', async () => {
    const dir = await tempDir(teardown, 'buildhaus-closed-')
    const file = join(dir, 'closed.json')
    await writeFile(file, formatMeshDefinition({ v: 1, name: 'closed-lab', founders: [...testMesh().founders], admit: 2, closed: true }))
    const node = await startNodeProcess(teardown, { args: ['--mesh', file, '--slots', '0'] })
    expect((node.ready as unknown as { mesh: { closed: boolean } }).mesh.closed).toBe(true)
    const member = await hostilePeer(teardown, { key: testMesh().takeKey() })
    await member.connect(node.address)
    const stranger = await hostilePeer(teardown)
    const refused = await stranger.libp2p.dial(multiaddr(node.address)).then(async (connection) => {
      // Refused right after the handshake: the connection does not stay open.
      await waitFor(() => connection.status !== 'open', { timeoutMs: 10_000, what: 'the node to drop the stranger' })
      return true
    }, () => true)
    expect(refused).toBe(true)
    await waitFor(() => stranger.libp2p.getConnections().length === 0, { timeoutMs: 10_000, what: 'no connection left to the stranger' })
    expect(member.libp2p.getConnections().length).toBeGreaterThan(0)
  })
})

describe('membership on a live mesh: a volunteer is admitted by vouches (3 node processes)', () => {
  const teardown = useTeardown()

  it('a stranger builds nothing and counts for nothing until two members vouch; an unvouch takes it out again', async () => {
    const a = await startNodeProcess(teardown, { args: ['--slots', '1'] })
    const b = await startNodeProcess(teardown, { args: ['--slots', '1', '--bootstrap', a.address] })
    const volunteer = await startNodeProcess(teardown, { stranger: true, args: ['--slots', '1', '--bootstrap', a.address] })
    const nodes = [a, b, volunteer]
    await waitForMesh(nodes)
    const key = volunteer.ready.author
    expect((volunteer.ready as unknown as { member: boolean, mesh: { name: string } })).toMatchObject({ member: false, mesh: { name: 'test' } })
    expect((a.ready as unknown as { member: boolean }).member).toBe(true)
    const before = await members(volunteer)
    expect(before.self).toEqual({ author: key, member: false, founder: false, vouchers: [], needed: 2 })
    const text = await runCli(['members', '--api', volunteer.apiUrl])
    expect(text.stdout).toContain('this node (*) is not a member: 2 more members\' vouches needed')
    expect(text.stdout).toContain(`buildhaus-node vouch ${key}`)

    // A job for three builders: only the two members build; the volunteer never claims.
    const scratch = await tempDir(teardown, 'buildhaus-members-')
    const job = await a.submit(await sortJobDir(scratch, { name: 'three-replicas', replicas: 3 }))
    await waitFor(async () => {
      const view = await a.job(job.id)
      return view.platforms[0]!.results.length === 2 ? view : undefined
    }, { timeoutMs: 60_000, intervalMs: 200, what: 'the two members to deliver' })
    const pending = await a.job(job.id)
    expect(pending.platforms[0]!.claims.map((c) => c.builder)).not.toContain(key)
    expect(pending.platforms[0]!.reason).toBe('unmatched: all 2 live nodes offering linux-x64 already took part; 1 more result wanted')

    // Changes need the node's token even from this machine: with only an address, the CLI has none, and says how to give it.
    const tokenless = await runCli(['vouch', key, '--api', a.apiUrl])
    expect(tokenless.code).not.toBe(0)
    expect(tokenless.stderr).toContain('changes need the node\'s API token, from this machine too')
    expect(tokenless.stderr).toContain('this command found no token to send: give the node\'s --home (its api-token is read from there) or set BUILDHAUS_API_TOKEN')
    // One vouch: waiting (the CLI finds the node and its token through the node's home). The second (by peer id,
    // the token given in the environment) admits it, on every node.
    const first = await runCli(['vouch', key, '--home', a.home])
    expect(first.code, first.stderr).toBe(0)
    expect(first.stdout).toContain('it is not a member of "test" yet: 1 of 2 members\' vouches; 1 more needed')
    const second = await runCli(['vouch', peerIdOfAuthor(key).toString(), '--api', b.apiUrl, '--json'], { env: { ...process.env, BUILDHAUS_API_TOKEN: await b.token() } })
    expect(second.code, second.stderr).toBe(0)
    expect(JSON.parse(second.stdout)).toMatchObject({ type: 'vouch', member: key, admitted: true, selfMember: true })
    await waitFor(async () => (await Promise.all(nodes.map(members))).every((m) => m.members.some((r) => r.key === key)), { timeoutMs: 20_000, intervalMs: 200, what: 'every node to count the volunteer a member' })
    expect((await members(volunteer)).self).toEqual({ author: key, member: true, founder: false, vouchers: [a.ready.author, b.ready.author].sort(), needed: 0 })

    // Now it is counted: it takes the third replica, and the job is verified.
    const verified = await waitFor(async () => {
      const view = await a.job(job.id)
      return view.verdict === 'verified' ? view : undefined
    }, { timeoutMs: 60_000, intervalMs: 200, what: 'the volunteer to build the third replica' }).catch(async (err: Error) => { throw new Error(`${err.message}: ${describeJob(await a.job(job.id))}`) })
    expect(verified.platforms[0]!.results.find((r) => r.builder === key)).toMatchObject({ counted: true, agrees: true })

    // a withdraws: the volunteer is out again, and its result no longer counts.
    const withdrawn = await runCli(['unvouch', key, '--home', a.home])
    expect(withdrawn.stdout).toContain('it is not a member of "test" yet: 1 of 2 members\' vouches; 1 more needed')
    await waitFor(async () => (await Promise.all(nodes.map(members))).every((m) => !m.members.some((r) => r.key === key)), { timeoutMs: 20_000, intervalMs: 200, what: 'every node to drop the volunteer' })
    const after = await a.job(job.id)
    expect(after.platforms[0]!.results.find((r) => r.builder === key)).toMatchObject({ trusted: false, counted: false })
    expect(after.verdict).not.toBe('verified')

    // A key cannot vouch for itself; a key that is not one is refused with advice.
    const self = await runCli(['vouch', a.ready.author, '--home', a.home])
    expect(self.code).toBe(1)
    expect(self.stderr).toContain('a key cannot vouch for itself')
    expect((await runCli(['vouch', 'bob', '--api', a.apiUrl])).code).toBe(2)
  }, 240_000)
})
