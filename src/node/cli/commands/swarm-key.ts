import { resolve } from 'node:path'
import { writeNewSwarmKey } from '../../../gossip/nat/index.js'
import { defineCommand, jsonOption } from '../command.js'

export const swarmKeyCommand = defineCommand({
  name: ['swarm-key'],
  summary: 'make a new pre-shared key for a private mesh (give every node a copy, then join with --swarm-key FILE)',
  args: 'FILE',
  positionals: { min: 1, max: 1 },
  options: {
    ...jsonOption
  },
  async run (options, positionals, io) {
    const file = resolve(positionals[0]!)
    await writeNewSwarmKey(file)
    if (options.json) {
      io.stdout.write(`${JSON.stringify({ file })}\n`)
      return 0
    }
    io.stdout.write([
      `wrote a new swarm key to ${file} (mode 0600)`,
      'copy it to every node of the private mesh (a secure channel: anyone with it can connect),',
      `then start each node with \`buildhaus-node join --swarm-key ${file}\`; nodes without it cannot connect at all.`,
      ''
    ].join('\n'))
    return 0
  }
})
