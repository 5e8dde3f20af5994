import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'
import { DEFAULT_LISTEN_ADDRESS } from '../../../gossip/constants.js'
import { packageVersion } from '../../../util/package-root.js'
import { buildNodeConfig, DEFAULT_API_HOST, DEFAULT_API_PORT, shippedBootstrapPeers, type NodeConfig } from '../../config.js'
import { startNode, type RunningNode } from '../../daemon.js'
import { defineCommand, homeOption, type CliIO } from '../command.js'

export const joinCommand = defineCommand({
  name: ['join'],
  summary: 'start this node: join the mesh and serve the API until stopped (Ctrl-C, SIGTERM)',
  options: {
    ...homeOption,
    bootstrap: { type: 'string', multiple: true, placeholder: 'MULTIADDR', description: 'a peer to join through, ending in /p2p/<peer id> (default: the peers listed in keys/bootstrap.txt)' },
    mdns: { type: 'boolean', default: true, description: 'do not look for peers on the local network by multicast DNS (on by default)' },
    listen: { type: 'string', multiple: true, placeholder: 'MULTIADDR', description: `where to accept peers (default ${DEFAULT_LISTEN_ADDRESS}: every interface, port 4710)` },
    platform: { type: 'string', multiple: true, placeholder: 'LABEL', description: 'a platform label to offer (default: detected, e.g. linux-x64 and debian-12)' },
    slots: { type: 'string', placeholder: 'N', description: 'builds to run at once (default: half the CPUs, at least 1; 0 joins without building)' },
    api: { type: 'string', placeholder: 'HOST:PORT', description: `serve the HTTP API here (default ${DEFAULT_API_HOST}:${DEFAULT_API_PORT}, this machine only; port 0 picks a free one)` },
    sandbox: { type: 'string', placeholder: 'bubblewrap|none', description: 'how builds are isolated (default bubblewrap; none runs jobs unconfined)' },
    mesh: { type: 'string', placeholder: 'FILE', description: 'the mesh to join, as a mesh definition (default: mesh.json in the home, else the project\'s keys/mesh.json)' },
    trust: { type: 'string', placeholder: 'DIR|everyone', description: 'count only the builders whose public keys are in DIR instead of the mesh\'s members; `everyone` counts every key (unsafe on an open network); default: the members' },
    quorum: { type: 'string', placeholder: 'N', description: 'agreeing distinct builders a platform needs (default: its replica count)' },
    'blob-cache': { type: 'string', placeholder: 'MB', description: 'how much the blob store (sources, logs, artifacts) may hold (default 4096)' },
    environment: { type: 'string', multiple: true, placeholder: 'NAME', description: 'offer builds in this environment, e.g. debian-12 (made from Debian\'s archive at start if missing; see `env`)' },
    'environment-dir': { type: 'string', placeholder: 'DIR', description: 'where environments are kept (default: /var/cache/buildhaus/environments as root, else <home>/environments; nodes may share one)' },
    'environment-cache': { type: 'string', placeholder: 'MB', description: 'how much the environments may take, least recently used removed first (default 32768)' },
    relay: { type: 'string', placeholder: 'auto|on|off', description: 'relay for peers behind NAT (default auto: only while this node has a public address; see docs/NETWORK.md)' },
    upnp: { type: 'boolean', description: 'ask the router to forward the p2p port (UPnP or NAT-PMP), so peers can dial this node directly' },
    announce: { type: 'string', multiple: true, placeholder: 'MULTIADDR', description: 'a public address others can dial this node at, e.g. /ip4/203.0.113.7/tcp/4710 when the router forwards that port' },
    'swarm-key': { type: 'string', placeholder: 'FILE', description: 'join a private mesh: only nodes holding this key (made by `buildhaus-node swarm-key`) can connect' },
    poll: { type: 'boolean', default: true, description: 'do not poll watches (this node never fetches upstream releases; others are designated instead)' },
    'watch-allow': { type: 'string', multiple: true, placeholder: 'CIDR', description: 'let watches reach this address or range although it is loopback or private (e.g. 127.0.0.1 for a registry on this machine)' },
    'watch-min-interval': { type: 'string', placeholder: 'SECONDS', description: 'poll one watch at most this often, whatever it asks (default 300)' },
    'retain-days': { type: 'string', placeholder: 'DAYS', description: 'keep the artifacts of verified platforms this node built pinned, outside the cache bound, this long (default 90; 0: never pin)' },
    json: { type: 'boolean', description: 'print one JSON line when ready ({"event":"ready",…}) and one when stopped' }
  },
  async run (options, _positionals, io) {
    const config = buildNodeConfig({
      ...(options.home !== undefined ? { home: options.home } : {}),
      listen: options.listen,
      bootstrap: options.bootstrap,
      defaultBootstrap: shippedBootstrapPeers(),
      mdns: options.mdns,
      platform: options.platform,
      ...(options.slots !== undefined ? { slots: options.slots } : {}),
      ...(options.api !== undefined ? { api: options.api } : {}),
      ...(options.sandbox !== undefined ? { sandbox: options.sandbox } : {}),
      ...(options.trust !== undefined ? { trust: options.trust } : {}),
      ...(options.mesh !== undefined ? { mesh: options.mesh } : {}),
      ...(options.quorum !== undefined ? { quorum: options.quorum } : {}),
      ...(options['blob-cache'] !== undefined ? { blobCache: options['blob-cache'] } : {}),
      environment: options.environment,
      ...(options['environment-dir'] !== undefined ? { environmentDir: options['environment-dir'] } : {}),
      ...(options['environment-cache'] !== undefined ? { environmentCache: options['environment-cache'] } : {}),
      ...(options.relay !== undefined ? { relay: options.relay } : {}),
      upnp: options.upnp,
      announce: options.announce,
      ...(options['swarm-key'] !== undefined ? { swarmKey: options['swarm-key'] } : {}),
      ...(options['retain-days'] !== undefined ? { retainDays: options['retain-days'] } : {}),
      poll: options.poll,
      watchAllow: options['watch-allow'],
      ...(options['watch-min-interval'] !== undefined ? { watchMinInterval: options['watch-min-interval'] } : {})
    }, io.env)
    warnAboutSandbox(config, io)

    const node = await startNode(config, {
      // Progress of environments being made: lines on stderr, or JSON events with --json.
      environmentProgress: (line) => {
        io.stderr.write(options.json ? `${JSON.stringify({ event: 'environment', line })}\n` : `${line}\n`)
      }
    })
    if (!io.signal.aborted) {
      report(node, options.json, io)
      await new Promise<void>((resolve) => { io.signal.addEventListener('abort', () => { resolve() }, { once: true }) })
    }
    if (!options.json) io.stderr.write('stopping…\n')
    await node.stop()
    io.stdout.write(options.json ? `${JSON.stringify({ event: 'stopped', peerId: node.peerId.toString() })}\n` : 'stopped\n')
    return 0
  }
})

/** Where this node stands in its mesh, and what a volunteer does next: one line of `join`'s report. */
export function membershipLine (node: RunningNode): string {
  const { definition } = node.mesh
  const where = `"${definition.name}" (${node.mesh.file})`
  if (node.trustMode === 'everyone') return `${where}; this node counts EVERY key's claims and results (--trust everyone: unsafe on an open network)`
  if (node.trustMode === 'list') return `${where}; this node counts its own trust list (${node.config.trust ?? ''}) instead of the members`
  if (definition.founders.length === 0) {
    return `${where} lists no founders yet, so no key is a member: this node relays, stores and serves, but builds nothing and counts no result (found your own mesh: \`buildhaus-node mesh init\`)`
  }
  const view = node.membership.view()
  const self = view.members.find((m) => m.key === node.author)
  const count = `${view.members.length} member${view.members.length === 1 ? '' : 's'}`
  if (self !== undefined) return `${where}: this node is ${self.founder ? 'a founder' : 'a member'}; ${count}`
  const candidate = view.candidates.find((c) => c.key === node.author)
  const needed = candidate?.needed ?? definition.admit
  return `${where}: this node is NOT a member yet (${count}); it relays,\n` +
    'stores, serves and may submit, but builds only once admitted. Send its key to members of\n' +
    `the mesh; ${needed} more must run: buildhaus-node vouch ${node.author}`
}

function report (node: RunningNode, json: boolean, io: CliIO): void {
  const { config } = node
  const ready = {
    event: 'ready',
    version: packageVersion(),
    pid: process.pid,
    peerId: node.peerId.toString(),
    author: node.author,
    home: config.home,
    listen: node.listenAddresses(),
    api: node.apiUrl,
    platforms: config.platforms,
    environments: config.environments,
    slots: config.slots,
    sandbox: config.sandbox,
    bootstrap: config.bootstrap,
    mdns: config.mdns,
    mesh: {
      name: node.mesh.definition.name,
      file: node.mesh.file,
      fingerprint: node.mesh.fingerprint,
      founders: node.mesh.definition.founders.length,
      admit: node.mesh.definition.admit,
      closed: node.mesh.definition.closed === true
    },
    trust: node.trustMode,
    member: node.membership.isMember(node.author)
  }
  if (json) {
    io.stdout.write(`${JSON.stringify(ready)}\n`)
    return
  }
  const [firstAddress, ...moreAddresses] = ready.listen
  io.stdout.write([
    `buildhaus-node ${ready.version} joined the mesh`,
    `  peer id    ${ready.peerId}`,
    `  author     ${ready.author}`,
    `  home       ${ready.home}`,
    `  listening  ${firstAddress ?? '(nothing)'}`,
    ...moreAddresses.map((a) => `             ${a}`),
    `  api        ${ready.api}`,
    `  dashboard  ${node.dashboardLink}`,
    '             (the link carries the API token, which every change needs: keep it to yourself)',
    `  platforms  ${ready.platforms.join(', ')} (${ready.slots} slot${ready.slots === 1 ? '' : 's'})`,
    `  sandbox    ${ready.sandbox}`,
    ...(ready.environments.length > 0 ? [`  environments ${ready.environments.join(', ')} (in ${config.environmentDir}; advertised once ready)`] : []),
    `  peers      ${ready.bootstrap.length > 0 ? `bootstrap ${ready.bootstrap.join(', ')}` : 'no bootstrap'}${ready.mdns ? ', mDNS on' : ''}`,
    `  mesh       ${membershipLine(node).split('\n').join('\n             ')}`,
    'Ctrl-C stops it.',
    ''
  ].join('\n'))
}

function warnAboutSandbox (config: NodeConfig, io: CliIO): void {
  if (config.sandbox === 'none') {
    io.stderr.write('WARNING: --sandbox none: jobs will run unconfined, as this user, with this machine\'s network and files; use it only on a machine you can wipe.\n')
  } else if (!onPath('bwrap', io.env)) {
    io.stderr.write('note: bubblewrap (bwrap) is not installed, so this node will refuse to build; install it with `apt-get install bubblewrap`.\n')
  }
}

function onPath (program: string, env: NodeJS.ProcessEnv): boolean {
  return (env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, program), constants.X_OK)
      return dir !== ''
    } catch {
      return false
    }
  })
}
