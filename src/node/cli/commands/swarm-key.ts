import { resolve } from 'node:path'
import { writeNewSwarmKey } from '../../../gossip/nat/index.js'
import { defineCommand } from '../command.js'
import { swarmKeySpec } from '../specs.js'

export const swarmKeyCommand = defineCommand({
  ...swarmKeySpec,
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
