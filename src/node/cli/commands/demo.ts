import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { packDirectory } from '../../../archive/index.js'
import { readJobSpec } from '../../../jobs/index.js'
import { createExecutor, SandboxUnavailableError, type Executor } from '../../../sandbox/index.js'
import { describeError, EnvironmentError, UsageError } from '../../../util/errors.js'
import { packageRoot } from '../../../util/package-root.js'
import { waitFor } from '../../../util/wait.js'
import { NodeClient } from '../client.js'
import { buildNodeConfig, parseSandbox } from '../../config.js'
import { startNode, type RunningNode } from '../../daemon.js'
import { loadOrCreateIdentity } from '../../home/identity.js'
import { foundMeshFor } from '../../home/found-mesh.js'
import { defineCommand } from '../command.js'
import { demoSpec } from '../specs.js'
import { jobReport } from '../job-format.js'
import { watchJob } from '../watch.js'

export const demoCommand = defineCommand({
  ...demoSpec,
  async run (options, _positionals, io) {
    const count = options.nodes === undefined ? 3 : Number(options.nodes)
    if (!Number.isSafeInteger(count) || count < 1 || count > 8) throw new UsageError(`--nodes ${JSON.stringify(options.nodes)} must be a whole number from 1 to 8`)
    const asked = options.sandbox === undefined ? undefined : parseSandbox(options.sandbox)
    const exampleDir = resolve(options.example ?? join(packageRoot(), 'examples', 'hello'))
    const spec = await readJobSpec(exampleDir)
    const say = (line: string): void => { if (!options.json) io.stderr.write(`${line}\n`) }

    const { executor, fellBack } = await demoExecutor(asked)
    const sandbox = executor.kind
    // Said even with --json (stdout stays one JSON document): nobody should miss it.
    if (sandbox === 'none') io.stderr.write(`${unsandboxedWarning(fellBack)}\n`)

    const base = await mkdtemp(join(tmpdir(), 'buildhaus-demo-'))
    const nodes: RunningNode[] = []
    try {
      // The demo founds its own mesh: every demo node is a founder, so their results count.
      const homes = Array.from({ length: count }, (_, i) => join(base, `node${i + 1}`))
      const meshFile = join(base, 'mesh.json')
      await foundMeshFor(homes, meshFile, { name: 'demo' })
      if (sandbox === 'none') await admitOnlyOwnJobs(homes)
      say(`starting ${count} nodes (homes under ${base}), founders of the mesh "demo" (${meshFile})…`)
      for (let i = 0; i < count; i++) {
        const config = buildNodeConfig({
          home: homes[i]!,
          mesh: meshFile,
          listen: ['/ip4/127.0.0.1/tcp/0'],
          bootstrap: i === 0 ? [] : [nodes[0]!.listenAddresses()[0]!],
          mdns: false,
          platform: [],
          slots: '1',
          api: '127.0.0.1:0',
          sandbox
        }, io.env)
        const node = await startNode(config, { executor, warn: say })
        nodes.push(node)
        say(`  node${i + 1}  ${node.peerId.toString()}  ${node.apiUrl}`)
      }
      await waitFor(() => nodes.every((n) => n.presence.size >= count - 1), { timeoutMs: 30_000, what: 'the demo nodes to see each other', signal: io.signal })
      say('the mesh is formed: every node hears every other')

      const first = nodes[0]!
      const packed = await packDirectory(exampleDir)
      const stored = await first.blobs.put(packed.bytes)
      const job = await first.jobs.submit({ spec, source: stored })
      say(`submitted ${job.name} (job ${job.id}) for ${job.platforms.map((p) => `${p.selector}×${p.replicas}`).join(', ')}`)
      const client = new NodeClient(first.apiUrl)
      const watched = await watchJob(client, job.id, {
        deadline: Date.now() + job.spec.timeout * 1000 + 60_000,
        signal: io.signal,
        progress: (line) => { say(`  ${line}`) }
      })
      if (options.json) {
        const described = nodes.map((n) => ({ peerId: n.peerId.toString(), api: n.apiUrl, home: n.config.home, listen: n.listenAddresses() }))
        io.stdout.write(`${JSON.stringify({ job: watched.job, dashboard: `${first.apiUrl}/`, sandbox, nodes: described })}\n`)
      }
      // The link carries the API token in its fragment: the dashboard then may submit, cancel and re-run.
      else io.stdout.write(`\n${jobReport(watched.job, first.apiUrl)}\ndashboard: ${first.dashboardLink}\n`)
      if (!options.exit) {
        // --home, not --api: the command then has the node's API token, which a demo without a sandbox asks for.
        say(`the mesh keeps running: submit more with \`buildhaus-node submit DIR --home ${first.config.home}\`; Ctrl-C stops it`)
        await new Promise<void>((resolve) => { io.signal.addEventListener('abort', () => { resolve() }, { once: true }) })
      }
      return watched.final && watched.job.verdict === 'verified' ? 0 : 1
    } finally {
      say('stopping the demo mesh…')
      await Promise.allSettled(nodes.reverse().map(async (n) => { await n.stop() }))
      // The nodes share this executor, so none of them closes it: its spare runs (and their warm sandboxes) go here.
      await executor.close?.().catch((err: unknown) => { say(`could not remove the sandbox's spare runs: ${describeError(err)}`) })
      await rm(base, { recursive: true, force: true })
    }
  }
})

/**
 * The demo's sandbox: the one asked for, else bubblewrap, else — only when
 * nothing was asked and bubblewrap cannot run here — none, so that the
 * README's first command shows the whole idea on a fresh machine. Its nodes
 * then build only the demo's own jobs (admitOnlyOwnJobs).
 */
async function demoExecutor (asked: 'bubblewrap' | 'none' | undefined): Promise<{ executor: Executor, fellBack: boolean }> {
  try {
    return { executor: await createExecutor(asked ?? 'bubblewrap'), fellBack: false }
  } catch (err) {
    if (!(err instanceof SandboxUnavailableError)) throw err
    if (asked === 'bubblewrap') throw new EnvironmentError(`the demo builds in a sandbox: ${err.message}`)
    return { executor: await createExecutor('none'), fellBack: true }
  }
}

function unsandboxedWarning (fellBack: boolean): string {
  const why = fellBack
    ? 'WARNING: bubblewrap (bwrap) is not installed, so this demo builds WITHOUT A SANDBOX, as you, on this machine.'
    : 'WARNING: --sandbox none: this demo builds WITHOUT A SANDBOX, as you, on this machine.'
  return [
    why,
    '  Its nodes build only jobs signed by their own keys (the example, and jobs you submit to them with their home\'s API token);',
    '  a job from any other key is refused. A real node (`buildhaus-node join`) without bubblewrap joins the mesh but builds nothing.',
    ...(fellBack ? ['  Install bubblewrap to see the demo sandboxed: `sudo apt-get install bubblewrap` (Debian, Ubuntu), `sudo dnf install bubblewrap` (Fedora).'] : [])
  ].join('\n')
}

/**
 * "The demo's own jobs" when it builds without a sandbox: jobs signed by the
 * key of one of its nodes, which live in its temporary homes (0700; the keys
 * 0600) and go away with them. Each node's admission policy names those keys
 * as its only submitters, so a job from another key, on this mesh or dialing
 * in, is refused by policy. Such a node also asks for its API token even from
 * this machine (builds share its network), so another user of this machine
 * cannot make it sign a job either.
 */
async function admitOnlyOwnJobs (homes: string[]): Promise<void> {
  const identities = []
  for (const home of homes) identities.push(await loadOrCreateIdentity(home))
  const policy = `${JSON.stringify({ submitters: identities.map((identity) => identity.author) }, null, 2)}\n`
  for (const identity of identities) await writeFile(identity.paths.policy, policy, { mode: 0o600 })
}
