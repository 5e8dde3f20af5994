import { defineCommand } from '../command.js'
import { initSpec } from '../specs.js'
import { initIdentity } from '../../home/identity.js'
import { resolveHome } from '../../home/home.js'

export const initCommand = defineCommand({
  ...initSpec,
  async run (options, _positionals, io) {
    const home = resolveHome(options.home, io.env)
    const { identity, createdToken } = await initIdentity(home)
    const result = {
      home,
      peerId: identity.peerId.toString(),
      author: identity.author,
      keyFile: identity.paths.key,
      tokenFile: identity.paths.apiToken,
      createdToken
    }
    if (options.json) {
      io.stdout.write(`${JSON.stringify(result)}\n`)
      return 0
    }
    io.stdout.write([
      `created a node identity in ${home}`,
      `peer id:  ${result.peerId}`,
      `author:   ${result.author}`,
      `key:      ${result.keyFile} (mode 0600; back it up, it is this node's name in the log)`,
      `token:    ${result.tokenFile}${createdToken ? '' : ' (kept the existing one)'}`,
      'next: `buildhaus-node join` to start the node',
      ''
    ].join('\n'))
    return 0
  }
})
