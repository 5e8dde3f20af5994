import { connectFromOptions } from '../client.js'
import type { VouchResponse } from '../../api/routes/members.js'
import { defineCommand, type CliIO } from '../command.js'
import { unvouchSpec, vouchSpec } from '../specs.js'
import { short } from '../job-format.js'
import { parseMemberKey } from './mesh-init.js'

/** `vouch` and `unvouch` differ only in the entry they ask the node to sign. */
function vouchCommandOf (type: 'vouch' | 'unvouch', spec: typeof vouchSpec) {
  return defineCommand({
    ...spec,
    async run (options, positionals, io) {
      const member = parseMemberKey(positionals[0]!, 'KEY')
      const client = await connectFromOptions(options, io.env)
      const answer = await client.postJson<VouchResponse>(`/api/members/${type}`, { member }, { signal: io.signal })
      if (options.json) io.stdout.write(`${JSON.stringify(answer)}\n`)
      else report(answer, io)
      return 0
    }
  })
}

function report (answer: VouchResponse, io: CliIO): void {
  const { members } = answer
  const mesh = `"${members.mesh.name}"`
  const candidate = members.candidates.find((c) => c.key === answer.member)
  const member = members.members.find((m) => m.key === answer.member)
  const lines = [`${answer.type === 'vouch' ? 'vouched for' : 'withdrew the vouch for'} ${answer.member} (entry ${short(answer.entry)})`]
  if (member !== undefined) {
    lines.push(member.founder
      ? `  it is a founder of ${mesh}: a member whatever the vouches`
      : `  it is a member of ${mesh}, vouched for by ${member.vouchers.length} member${member.vouchers.length === 1 ? '' : 's'} (${members.mesh.admit} needed)`)
  } else if (candidate !== undefined) {
    lines.push(`  it is not a member of ${mesh} yet: ${candidate.vouchers.length} of ${members.mesh.admit} members' vouches; ${candidate.needed} more needed`)
  } else {
    lines.push(`  it is not a member of ${mesh}`)
  }
  if (!answer.selfMember) lines.push(`  note: this node is not a member of ${mesh}, so its ${answer.type} counts only once it is admitted`)
  if (members.trust !== 'members') lines.push(`  note: this node counts ${members.trust === 'everyone' ? 'everyone' : 'its own trust list'} (--trust), not the members`)
  io.stdout.write(`${lines.join('\n')}\n`)
}

export const vouchCommand = vouchCommandOf('vouch', vouchSpec)
export const unvouchCommand = vouchCommandOf('unvouch', unvouchSpec)
