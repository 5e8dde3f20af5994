import { connectFromOptions } from '../client.js'
import type { VouchResponse } from '../../api/routes/members.js'
import { apiOption, defineCommand, homeOption, jsonOption, type CliIO } from '../command.js'
import { short } from '../job-format.js'
import { parseMemberKey } from './mesh-init.js'

function vouchCommandOf (type: 'vouch' | 'unvouch') {
  return defineCommand({
    name: [type],
    summary: type === 'vouch'
      ? 'vouch for a key as a member of this node\'s mesh (a key with enough members\' vouches is admitted)'
      : 'withdraw this node\'s vouch for a key (it stays a member only while enough other members vouch)',
    args: 'KEY',
    positionals: { min: 1, max: 1 },
    options: {
      ...apiOption,
      ...homeOption,
      ...jsonOption
    },
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

export const vouchCommand = vouchCommandOf('vouch')
export const unvouchCommand = vouchCommandOf('unvouch')
