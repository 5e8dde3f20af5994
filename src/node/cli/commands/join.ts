import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'
import { packageVersion } from '../../../util/package-root.js'
import { buildNodeConfig, shippedBootstrapPeers, type NodeConfig } from '../../config.js'
import { startNode, type RunningNode } from '../../daemon.js'
import { defineCommand, type CliIO } from '../command.js'
import { joinSpec } from '../specs.js'

export const joinCommand = defineCommand({
  ...joinSpec,
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
